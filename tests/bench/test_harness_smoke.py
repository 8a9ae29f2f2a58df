"""The benchmark harness still works: every workload runs ~2 s and yields numbers with no
errors (bench/run.py fails a run with errors itself; this keeps it from rotting unseen).

Needs PostgreSQL, Redis and wrk (skipped locally, failed in CI when missing); measures
oidc-provider beside Mynagate when node and npm are there. Not a measurement: the numbers
of a 2-second run on a busy machine mean nothing, only that they exist.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import PG_ADMIN_URL, REDIS_URL, ROOT, need

pytestmark = [pytest.mark.bench, pytest.mark.postgres]


def services_up() -> str | None:
    import redis
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        redis.Redis.from_url(REDIS_URL).ping()
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL/Redis not reachable: {exc}"
    return None


def test_every_workload_produces_numbers_without_errors(tmp_path):
    problem = services_up()
    need(problem is None, problem or "")
    need(shutil.which("wrk") is not None, "wrk is not installed (scripts/test-deps.sh)")
    with_peer = bool(shutil.which("node") and shutil.which("npm")
                     and (ROOT / "bench/peer/node_modules/oidc-provider").is_dir())
    out = tmp_path / "bench.json"
    # No warm-up runs: numbers, not good numbers, keep it under a minute.
    cmd = [sys.executable, str(ROOT / "bench/run.py"), "--seconds", "2", "--warmup", "0",
           "--rounds", "2",
           "--results", "", "--json", str(out)] + ([] if with_peer else ["--no-peer"])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    measured = {(r["workload"], r["provider"]): r for r in rows if "ops" in r}
    expected = {("sso", "Mynagate"), ("sso @ ½ max", "Mynagate"), ("card", "Mynagate"),
                ("sso", "floor (Flask)"),
                ("refresh", "Mynagate"), ("password", "Mynagate")}
    if with_peer:
        expected |= {("sso", "oidc-provider"), ("sso @ ½ max", "oidc-provider"),
                     ("refresh", "oidc-provider")}
    assert expected <= set(measured), sorted(measured)
    for key in expected:
        row = measured[key]
        assert row["ops"] > 0 and row["rate"] > 0, (key, row)
        assert row["errors"] == {}, (key, row["errors"])
        assert row["p50_ms"] > 0 and row["p99_ms"] >= row["p50_ms"], (key, row)
        assert row["cpu_ms_per_op"] > 0, (key, row)
    # The full-rate SSO and refresh runs come in interleaved rounds, one rate each.
    for key in expected & {("sso", "Mynagate"), ("sso", "oidc-provider"),
                           ("sso", "floor (Flask)"), ("refresh", "Mynagate"),
                           ("refresh", "oidc-provider")}:
        rates = measured[key]["round_rates"]
        assert len(rates) == 2 and all(rate > 0 for rate in rates), (key, rates)
    if with_peer:
        assert "× oidc-provider (median of 2 rounds:" in measured["sso", "Mynagate"]["ratio"]
        assert "× oidc-provider (median of 2 rounds:" in measured["refresh", "Mynagate"]["ratio"]
    assert "| sso | Mynagate |" in proc.stdout
