"""`idp serve` with IDP_WORKERS=2: gunicorn in prometheus-client's multiprocess mode, so any
worker's /metrics counts every worker's requests; the run's metrics directory goes at exit."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, ROOT, need
from tests.ops.conftest import closed_port


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own server
        return response.read().decode()


@pytest.fixture
def served(tmp_path):
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        need(False, f"Redis not reachable: {exc}")
    port = closed_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IDP_ENV": "development",
           "IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'idp.db'}", "IDP_REDIS_URL": REDIS_URL,
           "IDP_WORKERS": "2", "IDP_KEYS_DIR": str(tmp_path / "keys"),
           "IDP_JPKI_REVOCATION": "none", "IDP_JPKI_TRUST_ANCHORS": "",
           "IDP_ISSUER": f"http://127.0.0.1:{port}", "IDP_SECRET_KEY": uuid.uuid4().hex,
           "IDP_PAIRWISE_SECRET": uuid.uuid4().hex}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    run = [sys.executable, "-c", "from idp.cli import main; main()"]
    subprocess.run([*run, "db", "upgrade"], env=env, check=True, capture_output=True)
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen([*run, "serve", "--port", str(port)], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(base + "/healthz")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("idp serve did not start:\n" + log.read_text())
                time.sleep(0.2)
        yield base, process, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)


def test_metrics_add_up_every_worker_and_the_directory_goes(served):
    base, process, log = served
    for _ in range(40):
        _get(base + "/healthz")
    text = _get(base + "/metrics")
    count = re.search(r'mynagate_http_request_duration_seconds_count\{endpoint="ops.healthz",'
                      r'method="GET"\} (\S+)', text)
    assert count is not None, text[:2000]
    assert float(count.group(1)) >= 41  # the first probe while starting, then 40
    directory = Path(re.search(r"metrics of every worker in (\S+)", log.read_text()).group(1))
    workers = {p.name for p in directory.glob("histogram_*.db")}
    assert len(workers) >= 1
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)
    assert not directory.exists()
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    assert any('"logger": "gunicorn.error"' in line for line in lines)
