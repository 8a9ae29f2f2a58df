"""Real processes for the multi-instance tests: a PostgreSQL cluster, Redis servers
(plain and Sentinel) and ``idp serve``, each on a free port of 127.0.0.1 and in a directory
of its own, so stopping or restarting them never touches the machine's shared services."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.conftest import ROOT, need


def free_port(below: int = 65536) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < below:
            return port


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, requests.RequestException):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not come up within {timeout} s")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class PostgresCluster:
    """``initdb`` + ``pg_ctl`` in a temporary directory (trust auth, no fsync: test data).
    initdb refuses root, so as root the cluster belongs to the ``postgres`` user."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        need(bool(found), "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)")
        self.bin = Path(found[-1]).parent
        self.as_user: list[str] = []
        self.dir = Path(tempfile.mkdtemp(prefix="mynagate-pg-"))
        if os.geteuid() == 0:
            need(shutil.which("runuser") is not None, "runuser (to run initdb as postgres)")
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data = self.dir / "data"
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N",
                  "-E", "UTF8", "--locale=C")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin / tool), *args], check=True,
                       capture_output=True, timeout=60)

    def _options(self) -> str:
        return (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o",
                  self._options(), "-w", "-t", "30", "start")

    def restart(self) -> None:
        """``-m fast``: every open connection is terminated, as in a failover."""
        # -l: the server must not inherit (and hold open) the pipe this call reads.
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-m", "fast",
                  "-o", self._options(), "-w", "-t", "30", "restart")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer:
    """``redis-server`` without persistence; ``stop`` kills it, ``start`` brings it back on
    the same port (empty: as a real restart without persistence would)."""

    def __init__(self, *extra: str, port: int | None = None) -> None:
        need(shutil.which("redis-server") is not None, "redis-server")
        self.port = port or free_port()
        self.extra = extra
        self.dir = Path(tempfile.mkdtemp(prefix="mynagate-redis-"))
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: _port_open(self.port), 10, f"redis-server :{self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisSentinel:
    """``redis-server --sentinel`` watching ``primary_port`` as service ``mymaster``."""

    def __init__(self, primary_port: int) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mynagate-sentinel-"))
        conf = self.dir / "sentinel.conf"
        conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                        f"sentinel monitor mymaster 127.0.0.1 {primary_port} 1\n"
                        "sentinel down-after-milliseconds mymaster 1000\n"
                        "sentinel failover-timeout mymaster 3000\n")
        self.proc = subprocess.Popen(["redis-server", str(conf), "--sentinel"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: _port_open(self.port), 10, f"redis sentinel :{self.port}")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Provider:
    """One ``idp serve`` process running THIS checkout's code (PYTHONPATH=ROOT)."""

    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        full_env = {**os.environ, **env, "IDP_WORKERS": str(workers),
                    "PYTHONPATH": str(ROOT)}
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            # The `idp` entry point, from this interpreter and this checkout.
            [sys.executable, "-c", "from idp.cli import main; main()", "serve", "--port",
             str(self.port)],
            env=full_env, cwd=str(ROOT), stdout=self._log_file, stderr=subprocess.STDOUT)
        wait_until(self._ready, 30, f"idp serve :{self.port} (log: {log})")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"idp serve exited: {self.log.read_text()[-2000:]}")
        return requests.get(self.base + "/.well-known/openid-configuration",
                            timeout=2).status_code == 200

    def pids(self) -> set[int]:
        """The serving processes (gunicorn's workers too): none may be replaced."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        found = {self.proc.pid}
        if children.exists():
            found |= {int(p) for p in children.read_text().split()}
        return found

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log_file.close()
