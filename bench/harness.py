"""What bench/run.py stands on: the services it starts (a fresh PostgreSQL database, a Redis
prefix, Mynagate under gunicorn, the oidc-provider peer), CPU accounting from /proc, and the
wrk runner. No workload logic here."""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "lua"
PEER = BENCH / "peer"
PG_ADMIN_URL = os.environ.get("MYNAGATE_BENCH_PG",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# A Redis db of its own (the tests use 15): nothing else should be in it, and the run's keys
# carry a unique prefix besides, deleted afterwards.
REDIS_URL = os.environ.get("MYNAGATE_BENCH_REDIS", "redis://127.0.0.1:6379/12")
SERVER_CPU = "0"  # the providers
LOAD_CPU = "1"  # wrk and bench/card_load.py
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The run cannot produce honest numbers (a service missing, errors under load)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def taskset(cpu: str) -> list[str]:
    return ["taskset", "-c", cpu] if shutil.which("taskset") and os.cpu_count() > 1 else []


# ----------------------------------------------------------------------------- tools
def ensure_wrk() -> str:
    """wrk from Debian, installed on first use (a fresh clone has none)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: installing wrk (apt-get) ...", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], env=env).returncode:
        subprocess.run([*sudo, "apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is not installed and apt-get could not install it")
    return found


def ensure_peer() -> bool:
    """npm install in bench/peer on first use; False when node/npm are not there."""
    if not (shutil.which("node") and shutil.which("npm")):
        return False
    if not (PEER / "node_modules" / "oidc-provider").is_dir():
        print("bench: npm ci in bench/peer ...", flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=PEER,
                       check=True)
    return True


# ----------------------------------------------------------------------------- services
@contextmanager
def fresh_database() -> Iterator[str]:
    """A new PostgreSQL database for this run (its SQLAlchemy URL), dropped afterwards."""
    from idp.store.scratch import scratch_database

    database = scratch_database(PG_ADMIN_URL, "mynagate_bench_")
    try:
        url = database.__enter__()
    except Exception as exc:  # noqa: BLE001 - any failure means: no PostgreSQL to bench on
        raise BenchError(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}") from exc
    try:
        yield url
    finally:
        database.__exit__(None, None, None)


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A unique key prefix in the bench's Redis db; its keys are deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis not reachable at {REDIS_URL}: {exc}") from exc
    prefix = f"mynagate-bench-{uuid.uuid4().hex[:10]}:"
    try:
        yield prefix
    finally:
        for batch in _batches(client.scan_iter(match=prefix + "*", count=1000), 500):
            client.delete(*batch)
        client.close()


def _batches(items, size: int):
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# ----------------------------------------------------------------------------- CPU, RSS
def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after its last ')'.
    return raw[raw.rindex(")") + 2:].split()


def cpu_ms(pid: int) -> float:
    """utime + stime of one process (its own threads included), in ms."""
    f = _stat_fields(pid)
    if f is None:
        return 0.0
    return (int(f[11]) + int(f[12])) * 1000 / CLK_TCK


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children(p)
    return tree


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pids_named(*names: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@dataclass
class CpuMeter:
    """CPU time of a set of processes, read before and after a load run. ``pids`` is a
    callable so a process tree or the database's backends are listed at each reading."""

    pids: object  # Callable[[], list[int]]
    _start: dict[int, float] = field(default_factory=dict)

    def snapshot(self) -> dict[int, float]:
        return {pid: cpu_ms(pid) for pid in self.pids()}  # type: ignore[operator]

    def start(self) -> None:
        self._start = self.snapshot()

    def spent_ms(self) -> float:
        # A process that appeared during the run counts from zero (a new worker, backend).
        end = self.snapshot()
        return sum(ms - self._start.get(pid, 0.0) for pid, ms in end.items())


def database_backends(database_url: str) -> list[int]:
    """The PostgreSQL server processes serving this run's database (the pool's backends),
    plus the cluster's WAL writer: commits are paid for there too. Other databases' backends
    (test suites on the same server) are not counted."""
    from sqlalchemy import text

    name = database_url.rsplit("/", 1)[1]
    with _admin_engine().connect() as conn:
        rows = conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE (datname = :n AND pid <> pg_backend_pid())"
            " OR backend_type = 'walwriter'"), {"n": name}).all()
    return [r[0] for r in rows]


_ADMIN = None


def _admin_engine():
    global _ADMIN
    if _ADMIN is None:
        from sqlalchemy import create_engine

        _ADMIN = create_engine(PG_ADMIN_URL, pool_size=1)
    return _ADMIN


def redis_pids() -> list[int]:
    return pids_named("redis-server")


# ----------------------------------------------------------------------------- processes
@dataclass
class Server:
    name: str
    base_url: str
    proc: subprocess.Popen
    log_path: Path

    def tree(self) -> list[int]:
        return process_tree(self.proc.pid)

    def workers(self) -> list[int]:
        """The processes that answer requests: gunicorn's workers, or node itself."""
        return children(self.proc.pid) or [self.proc.pid]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def start_server(name: str, cmd: list[str], env: dict[str, str], base_url: str,
                 ready_path: str, cwd: Path, log_dir: Path, timeout: float = 60.0) -> Server:
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    server = Server(name, base_url, proc, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            if requests.get(base_url + ready_path, timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.stop()
    raise BenchError(f"{name} did not answer {ready_path} within {timeout:.0f}s:\n"
                     f"{server.log_tail()}")


def python_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment for a Python process of this checkout: its own code first, so a
    worktree measures itself and not the checkout the venv was installed from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"]
                                      if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def gunicorn_cmd(port: int, workers: int, threads: int,
                 worker_class: str = "gthread", app: str = "mynagate_wsgi:app") -> list[str]:
    # The same shape as `idp serve` with IDP_WORKERS > 1 (gthread, 4 threads by default),
    # but with 1 worker allowed: `idp serve` falls back to werkzeug there.
    return [*taskset(SERVER_CPU), sys.executable, "-m", "gunicorn",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--threads", str(threads), "--worker-class", worker_class,
            "--keep-alive", "30", "--log-level", "warning",
            "--chdir", str(BENCH), app]


# ----------------------------------------------------------------------------- wrk
@dataclass
class LoadResult:
    """One load run's numbers. ``latencies_ms`` are per operation."""

    ops: int
    seconds: float
    latencies_ms: list[float]
    errors: dict[str, int]
    server_cpu_ms: float = 0.0
    backend_cpu_ms: float = 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    @property
    def cpu_per_op(self) -> float:
        return self.server_cpu_ms / self.ops if self.ops else float("nan")

    @property
    def backend_per_op(self) -> float:
        return self.backend_cpu_ms / self.ops if self.ops else float("nan")

    @classmethod
    def merged(cls, results: list[LoadResult]) -> LoadResult:
        """Several runs of one workload on one provider as one: their operations, time,
        latencies, errors and CPU added up (the rate is then the mean over the runs)."""
        errors: dict[str, int] = {}
        for result in results:
            for kind, count in result.errors.items():
                errors[kind] = errors.get(kind, 0) + count
        return cls(sum(r.ops for r in results), sum(r.seconds for r in results),
                   [ms for r in results for ms in r.latencies_ms], errors,
                   sum(r.server_cpu_ms for r in results),
                   sum(r.backend_cpu_ms for r in results))


def round_ratios(mine: list[LoadResult], peer: list[LoadResult]) -> list[float]:
    """Mynagate's rate over the peer's, round by round (runs of one round are seconds
    apart, so a shared machine's drift, which moved the peer's own rate by 70% between
    one run and the next, mostly cancels out of each ratio)."""
    return [m.rate / p.rate for m, p in zip(mine, peer, strict=True) if p.rate]


def describe_ratio(ratios: list[float], against: str) -> str:
    """``0.58× oidc-provider (median of 3 rounds: 0.55–0.61)``."""
    if not ratios:
        return ""
    median = statistics.median(ratios)
    if len(ratios) == 1:
        return f"{median:.2f}× {against}"
    return (f"{median:.2f}× {against} (median of {len(ratios)} rounds: "
            f"{min(ratios):.2f}–{max(ratios):.2f})")


def run_wrk(script: str, base_url: str, env: dict[str, str], *, seconds: float,
            connections: int, meters: tuple[CpuMeter, CpuMeter] | None = None) -> LoadResult:
    """wrk on the load core, one thread per connection (see bench/lua/common.lua)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [*taskset(LOAD_CPU), ensure_wrk(), "-t", str(connections), "-c", str(connections),
               "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
               "-s", str(LUA / script), base_url]
        full_env = {**os.environ, **env, "BENCH_LUA_DIR": str(LUA), "BENCH_OUT": str(out),
                    "BENCH_CONNECTIONS": str(connections)}
        if meters:
            for meter in meters:
                meter.start()
        proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True)
        spent = [meter.spent_ms() for meter in meters] if meters else [0.0, 0.0]
        if proc.returncode != 0 or not out.exists():
            raise BenchError(f"wrk {script} failed ({proc.returncode}):\n{proc.stdout}\n"
                             f"{proc.stderr}")
        data = json.loads(out.read_text())
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr)
    latencies = data["latencies_ms"] if isinstance(data["latencies_ms"], list) else []
    errors = dict(data["errors"]) if isinstance(data["errors"], dict) else {}
    if data.get("socket_errors"):
        errors["socket"] = int(data["socket_errors"])
    return LoadResult(int(data["ops"]), data["duration_us"] / 1e6, latencies, errors,
                      spent[0], spent[1])
