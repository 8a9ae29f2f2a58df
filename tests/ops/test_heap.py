"""idp.ops.heap: a serving process freezes what the app holds from its start, so the
garbage collector's full collections (which held the GIL 0.2-0.3 s on the bench machine)
walk only what came later; and `idp serve` does it before gunicorn forks and again in each
worker once its first requests have filled the caches."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from click.testing import CliRunner

from tests.conftest import REDIS_URL, ROOT, need


def test_what_the_app_holds_is_frozen_and_what_came_later_is_frozen_on_the_timer():
    # In a process of its own: a frozen object is never collected, and this one is pytest's.
    script = """
import gc, json
import idp.app  # what a provider holds: its modules, Flask, SQLAlchemy, Authlib, ...
from idp.ops.heap import freeze_again_later, freeze_what_is_held
tracked = len(gc.get_objects())
frozen = freeze_what_is_held()
left = len(gc.get_objects())
filled = [[i] for i in range(5000)]  # caches the first requests fill (lists: tracked)
timer = freeze_again_later(0.05)
timer.join(10)
print(json.dumps({"tracked": tracked, "frozen": frozen, "left": left,
                  "frozen_later": gc.get_freeze_count(), "daemon": timer.daemon}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["tracked"] > 50_000  # a collection worth sparing
    assert seen["frozen"] >= seen["tracked"] * 0.9
    assert seen["left"] < 1000  # what a full collection still walks
    assert seen["frozen_later"] >= seen["frozen"] + 5000
    assert seen["daemon"]  # never keeps a stopping process alive


@pytest.fixture
def serve_env(tmp_path):
    from idp.cli import cli, register_extra_commands

    register_extra_commands()
    env = {"IDP_ENV": "test", "IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'idp.db'}",
           "IDP_REDIS_URL": "", "IDP_KEYS_DIR": str(tmp_path / "keys"),
           "IDP_SECRET_KEY": uuid.uuid4().hex, "IDP_PAIRWISE_SECRET": uuid.uuid4().hex,
           "IDP_JPKI_REVOCATION": "none", "IDP_JPKI_TRUST_ANCHORS": "",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}

    def invoke(*args, **extra):
        return CliRunner().invoke(cli, list(args), env={**env, **extra},
                                  catch_exceptions=False)

    assert invoke("db", "upgrade").exit_code == 0
    assert invoke("keys", "list").exit_code == 0  # creates the signing keys
    return invoke


@pytest.fixture
def heap_calls(monkeypatch):
    import idp.ops.heap

    calls: list[str] = []
    monkeypatch.setattr(idp.ops.heap, "freeze_what_is_held", lambda: calls.append("now"))
    monkeypatch.setattr(idp.ops.heap, "freeze_again_later", lambda: calls.append("later"))
    return calls


def test_serve_with_workers_freezes_before_the_fork_and_in_each_worker(serve_env, heap_calls,
                                                                      monkeypatch):
    import redis
    from gunicorn.app.base import BaseApplication

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        need(False, f"Redis not reachable: {exc}")
    hooks: dict[str, object] = {}

    def run(self):  # gunicorn's master loop: what it was configured with, nothing served
        hooks["post_fork"] = self.cfg.post_fork
        assert heap_calls == ["now"]  # frozen before any worker is forked

    monkeypatch.setattr(BaseApplication, "run", run)
    result = serve_env("serve", "--port", "5998", IDP_WORKERS="2", IDP_REDIS_URL=REDIS_URL)
    assert result.exit_code == 0, result.output
    hooks["post_fork"](None, None)  # what each worker runs after the fork
    assert heap_calls == ["now", "later"]


def test_serve_alone_freezes_too(serve_env, heap_calls, monkeypatch):
    import werkzeug.serving

    served: list[int] = []
    monkeypatch.setattr(werkzeug.serving, "run_simple",
                        lambda host, port, app, **_: served.append(port))
    result = serve_env("serve", "--port", "5997")
    assert result.exit_code == 0, result.output
    assert served == [5997] and heap_calls == ["now", "later"]
