"""What tests/deploy shares: the docker/ files read the way Docker would read them, and one
provider started with exactly the container's commands (used by the command and the nginx
tests, so it starts once).

No Docker engine is needed: Debian's ``docker-compose config`` resolves the compose file,
the Dockerfile's ENTRYPOINT/CMD/HEALTHCHECK are parsed here, and the commands run on this
machine against the local PostgreSQL and Redis the PostgreSQL pass of the suite uses.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL, ROOT, fresh_postgres_database, need

DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
NGINX_DIR = DOCKER / "nginx"
SAMPLE_CERT = NGINX_DIR / "tls" / "cert.pem"
# A Redis database number of the deploy tests' own (the other tests use 15): the provider
# under test uses its built-in key prefix, so it must not share a database with them.
DEPLOY_REDIS_URL = os.environ.get("MYNAGATE_TEST_DEPLOY_REDIS", "redis://127.0.0.1:6379/13")
ISSUER = "https://idp.example.test"  # the sample certificate's name
VENV_BIN = Path(sys.executable).parent


def find_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- Dockerfile
def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        word, _, rest = current.strip().partition(" ")
        logical.append((word.upper(), rest.strip()))
        current = ""
    return logical


def exec_form(arguments: str) -> list[str]:
    """A JSON exec form (["a", "b"]); a shell form would need a shell in the image."""
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


@dataclass
class Dockerfile:
    stages: list[list[tuple[str, str]]]

    @property
    def final(self) -> list[tuple[str, str]]:
        return self.stages[-1]

    def last(self, instruction: str) -> str:
        values = [args for word, args in self.final if word == instruction]
        assert values, f"no {instruction} in the final stage"
        return values[-1]

    @property
    def entrypoint(self) -> list[str]:
        return exec_form(self.last("ENTRYPOINT"))

    @property
    def cmd(self) -> list[str]:
        return exec_form(self.last("CMD"))

    @property
    def healthcheck(self) -> list[str]:
        args = self.last("HEALTHCHECK")
        match = re.search(r"\bCMD\s+(\[.*\])\s*$", args)
        assert match, f"HEALTHCHECK is not an exec form: {args}"
        return exec_form(match.group(1))


@pytest.fixture(scope="session")
def dockerfile() -> Dockerfile:
    stages: list[list[tuple[str, str]]] = []
    for word, args in dockerfile_instructions(DOCKERFILE.read_text()):
        if word == "FROM":
            stages.append([])
        stages[-1].append((word, args))
    return Dockerfile(stages)


# ----------------------------------------------------------------------------- compose
@pytest.fixture(scope="session")
def test_pki(tmp_path_factory) -> Path:
    """A JPKI-like TEST hierarchy with a CRL: the deployment's revocation settings get real
    data to load (production mode wants a CRL source, and /readyz checks it)."""
    from idp.jpki.testing.pki_dir import write_test_pki

    directory = tmp_path_factory.mktemp("pki")
    write_test_pki(str(directory), 1)
    return directory


def filled_env(test_pki: Path) -> dict[str, str]:
    """docker/env.example with every empty value filled with a test value."""
    test_values = {
        "POSTGRES_PASSWORD": "pg-password-for-tests-only",
        "IDP_SECRET_KEY": "deploy-test-secret-key-0123456789",
        "IDP_PAIRWISE_SECRET": "deploy-test-pairwise-secret-0123456789",
        "IDP_ISSUER": ISSUER,
        "IDP_WORKERS": "2",
        # Never asked at start; the CRL below is what /readyz checks.
        "IDP_JPKI_OCSP_URL": "http://127.0.0.1:9/ocsp",
        "IDP_JPKI_CRL_SOURCES": str(test_pki / "crl.der"),
    }
    values = {}
    for line in (DOCKER / "env.example").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        values[key] = test_values.get(key, value)
    missing = [key for key, value in values.items() if not value]
    assert not missing, f"env.example has keys the tests do not fill: {missing}"
    return values


def run_compose_config(env_file: Path) -> subprocess.CompletedProcess:
    tool = find_tool("docker-compose")
    need(tool is not None, "docker-compose (Debian package docker-compose) is not installed")
    return subprocess.run(
        [tool, "--project-directory", str(DOCKER), "-f", str(COMPOSE_FILE),
         "--env-file", str(env_file), "config"],
        capture_output=True, text=True, timeout=60,
        # Only the env file speaks: no IDP_* or COMPOSE_* of the developer's shell.
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_file.parent)})


@pytest.fixture(scope="session")
def compose_env(test_pki, tmp_path_factory) -> dict[str, str]:
    return filled_env(test_pki)


@pytest.fixture(scope="session")
def compose_config(compose_env, tmp_path_factory) -> dict:
    """The compose file as docker-compose resolves it with the filled env.example."""
    import yaml

    env_file = tmp_path_factory.mktemp("compose") / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in compose_env.items()))
    result = run_compose_config(env_file)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def provider_services(config: dict) -> dict[str, dict]:
    """The long-running provider instances: the services whose command is `serve`."""
    return {name: svc for name, svc in config["services"].items()
            if (svc.get("command") or [None])[0] == "serve"}


# ----------------------------------------------------------------------------- the provider
@dataclass
class RunningProvider:
    port: int
    env: dict[str, str]
    serve_argv: list[str]
    migrate_argv: list[str]
    log: Path
    process: subprocess.Popen = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def adapt_argv(argv: list[str], port: int) -> list[str]:
    """The container's command for this machine: the `idp` of the venv under test, and
    loopback on a free port instead of 0.0.0.0:8000. Nothing else changes."""
    out = list(argv)
    out[0] = shutil.which(out[0], path=str(VENV_BIN)) or out[0]
    if "--host" in out:
        out[out.index("--host") + 1] = "127.0.0.1"
    if "--port" in out:
        out[out.index("--port") + 1] = str(port)
    return out


def adapted_environment(service: dict, database_url: str, keys_dir: Path,
                        test_pki: Path) -> dict[str, str]:
    """The compose service's environment, with the compose network's names (db, redis) and
    the volume's path replaced by this machine's PostgreSQL, Redis and a temporary
    directory, and the test PKI's root as the one trust anchor (the test CRL that
    IDP_JPKI_CRL_SOURCES names is signed by it, not by J-LIS). PYTHONPATH: the checkout
    under test, whatever the venv has installed."""
    env = {key: str(value) for key, value in service["environment"].items()}
    for key in ("IDP_DATABASE_URL", "IDP_REDIS_URL", "IDP_KEYS_DIR"):
        assert key in env, f"the compose environment has no {key}"
    assert "@db:5432/" in env["IDP_DATABASE_URL"] and "//redis:6379/" in env["IDP_REDIS_URL"]
    assert "IDP_JPKI_TRUST_ANCHORS" not in env  # the image's J-LIS roots, by default
    env.update(IDP_DATABASE_URL=database_url, IDP_REDIS_URL=DEPLOY_REDIS_URL,
               IDP_KEYS_DIR=str(keys_dir), IDP_JPKI_TRUST_ANCHORS=str(test_pki / "root.pem"),
               PATH=f"{VENV_BIN}:/usr/bin:/bin", PYTHONPATH=str(ROOT), HOME=str(keys_dir.parent),
               LANG="C.UTF-8")
    return env


def wait_http(url: str, timeout: float, process: subprocess.Popen | None = None,
              log: Path | None = None, **kwargs):
    import requests

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-3000:] if log else ""
            pytest.fail(f"the server exited with {process.returncode}:\n{tail}")
        try:
            return requests.get(url, timeout=2, **kwargs)
        except requests.RequestException as exc:
            last = exc
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {timeout}s: {last}")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    """Stop a process this test started (by its pid) and wait for it."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


def clean_redis() -> None:
    import redis

    r = redis.Redis.from_url(DEPLOY_REDIS_URL)
    keys = list(r.scan_iter("mynagate:*", count=500))
    if keys:
        r.delete(*keys)
    r.close()


@pytest.fixture(scope="session")
def running_provider(compose_config, dockerfile, test_pki, tmp_path_factory):
    """The migrate service's command, then the first provider service's, exactly as the
    container would run them (ENTRYPOINT + the service's command), on local PostgreSQL (a
    fresh database) and Redis, in the source tree as the image's WORKDIR is; stopped with
    SIGTERM as `docker stop` does."""
    providers = provider_services(compose_config)
    assert providers, "no provider service in the compose file"
    name, service = sorted(providers.items())[0]
    migrate = compose_config["services"]["migrate"]
    entrypoint = dockerfile.entrypoint
    port = free_port()
    migrate_argv = adapt_argv(entrypoint + migrate["command"], port)
    serve_argv = adapt_argv(entrypoint + service["command"], port)
    keys_dir = tmp_path_factory.mktemp("deploy") / "keys"
    keys_dir.mkdir(mode=0o700)
    log = keys_dir.parent / f"{name}.log"
    with fresh_postgres_database("mynagate_deploy_") as db_name:
        database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
        env = adapted_environment(service, database_url, keys_dir, test_pki)
        migrated = subprocess.run(migrate_argv, env=env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=90)
        assert migrated.returncode == 0, (shlex.join(migrate_argv), migrated.stderr[-3000:])
        with log.open("w") as out:
            process = subprocess.Popen(serve_argv, env=env, cwd=ROOT, stdout=out,
                                       stderr=subprocess.STDOUT)
        try:
            yield RunningProvider(port, env, serve_argv, migrate_argv, log, process)
        finally:
            code = stop(process)
            clean_redis()
            assert code == 0, f"{shlex.join(serve_argv)} exited with {code} on SIGTERM:\n" \
                              f"{log.read_text()[-3000:]}"
