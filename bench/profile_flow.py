"""Where one SSO flow's work goes, in one process: SQL statements and Redis calls per
request, and a cProfile of many flows (authorize → token → UserInfo) through the Flask test
client. A developer's tool beside the side-by-side harness (``bench/run.py``): counts are
exact and repeatable where the harness's timings are noisy.

Run: .venv/bin/python bench/profile_flow.py [--flows 300] [--backend postgres|sqlite] [--top 40]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import basic_auth  # noqa: E402 - the harness's own, as its workloads send it

from tests.conftest import (  # noqa: E402 - the test helpers drive the flow like a browser
    PG_ADMIN_URL,
    REDIS_URL,
    Browser,
    close_app,
    fresh_postgres_database,
    pkce_pair,
)


def build(backend: str, tmp: str):
    from contextlib import ExitStack

    from tests.conftest import build_app

    stack = ExitStack()
    urls = {"database_url": f"sqlite:///{tmp}/profile.db", "redis_url": ""}
    if backend == "postgres":
        name = stack.enter_context(fresh_postgres_database("mynagate_profile_"))
        urls = {"database_url": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name,
                "redis_url": REDIS_URL}
    app = build_app({"env": "test", "issuer": "http://127.0.0.1:5000",
                     "secret_key": "profile-secret-key-0123456789",
                     "pairwise_secret": "profile-pairwise-secret-0123456789",
                     "keys_dir": tmp, "jpki_revocation": "none", "jpki_trust_anchors": [],
                     "log_level": "WARNING", **urls})
    stack.callback(close_app, app)
    return app, stack


def seed(app):
    from idp.clients.registry import ClientSpec, register_client
    from idp.signin.passwords import hash_password
    from idp.store.models import Account, School
    from tests.conftest import RP, Student

    svc = app.extensions["mynagate"]
    with svc.db.session() as s:
        school = School(code="prof", name="計測小学校")
        s.add(school)
        s.flush()
        account = Account(school_id=school.id, login_id="p1", display_name="計測 太郎",
                          password_hash=hash_password("profile password 1"), grade="5",
                          class_name="1")
        s.add(account)
    row, secret = register_client(svc, ClientSpec(
        name="計測アプリ", redirect_uris=["https://rp.profile/cb"],
        post_logout_redirect_uris=[]), actor="profile")
    return (RP(row.client_id, secret, "https://rp.profile/cb", row.sector,
               "client_secret_basic"),
            Student(account.id, "prof", "p1", "profile password 1"))


class Counts:
    """SQL statements (an SQLAlchemy listener) and Redis commands (a wrapper) per label."""

    def __init__(self, app) -> None:
        from sqlalchemy import event

        self.sql: Counter[str] = Counter()
        self.redis: Counter[str] = Counter()
        self.label = "setup"
        self.statements: dict[str, list[str]] = {}
        svc = app.extensions["mynagate"]

        def count(_conn, _cursor, statement, *_args):
            self.sql[self.label] += 1
            self.statements.setdefault(self.label, []).append(statement.split("\n")[0][:90])

        for engine in svc.db.engines:
            event.listen(engine, "before_cursor_execute", count)

        if getattr(svc.store, "_r", None) is not None:
            # On the class: the store's threads each hold a client of their own. Every
            # command of this process counts (the event log's drainer too, as for SQL).
            import redis

            original = redis.Redis.execute_command

            def counted(client, *args, **kwargs):
                self.redis[self.label] += 1
                self.statements.setdefault(self.label, []).append(
                    "redis " + " ".join(str(a)[:60] for a in args[:2]))
                return original(client, *args, **kwargs)

            redis.Redis.execute_command = counted


class StepTimer:
    """CPU time (this process) per step of the flow, so a change's effect on one endpoint
    shows even when the machine is busy: report the minimum over several batches."""

    def __init__(self) -> None:
        self.cpu: Counter[str] = Counter()
        self._label = ""
        self._start = 0.0

    def step(self, label: str) -> None:
        now = time.process_time()
        if self._label:
            self.cpu[self._label] += now - self._start
        self._label, self._start = label, now


def one_flow(c, rp, counts: Counts | None, timer: StepTimer | None = None) -> None:
    verifier, challenge = pkce_pair()
    if counts:
        counts.label = "authorize"
    if timer:
        timer.step("authorize")
    r = c.get("/authorize", query_string={
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
        "scope": "openid profile", "code_challenge": challenge,
        "code_challenge_method": "S256", "state": "s"})
    assert r.status_code == 302, (r.status_code, r.headers.get("Location"))
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    if counts:
        counts.label = "token"
    if timer:
        timer.step("token")
    basic = basic_auth(rp.client_id, rp.client_secret)
    r = c.post("/token", data={"grant_type": "authorization_code", "code": code,
                               "redirect_uri": rp.redirect_uri, "code_verifier": verifier},
               headers={"Authorization": basic})
    assert r.status_code == 200, r.get_data(as_text=True)
    access = r.get_json()["access_token"]
    if counts:
        counts.label = "userinfo"
    if timer:
        timer.step("userinfo")
    r = c.get("/userinfo", headers={"Authorization": "Bearer " + access})
    assert r.status_code == 200, r.get_data(as_text=True)
    if timer:
        timer.step("")


def refresh_chain(c, rp, student):
    """One refresh-token chain (the harness's refresh workload): a sign-in with
    ``offline_access``, its code exchanged, then a function that runs one refresh grant with
    rotation, carrying the chain's newest refresh token on."""
    query, verifier = Browser(c).sign_in_and_authorize(
        rp, student, scope="openid profile offline_access")
    basic = basic_auth(rp.client_id, rp.client_secret)
    r = c.post("/token", data={"grant_type": "authorization_code", "code": query["code"],
                               "redirect_uri": rp.redirect_uri, "code_verifier": verifier},
               headers={"Authorization": basic})
    assert r.status_code == 200, r.get_data(as_text=True)
    newest = [r.get_json()["refresh_token"]]

    def one_refresh() -> None:
        r = c.post("/token", data={"grant_type": "refresh_token", "refresh_token": newest[0]},
                   headers={"Authorization": basic})
        assert r.status_code == 200, r.get_data(as_text=True)
        newest[0] = r.get_json()["refresh_token"]

    return one_refresh


def print_step_minimums(c, rp, flows: int, batches: int) -> None:
    best: dict[str, float] = {}
    for _ in range(batches):
        timer = StepTimer()
        for _ in range(flows):
            one_flow(c, rp, None, timer)
        for label, seconds in timer.cpu.items():
            best[label] = min(best.get(label, float("inf")), seconds / flows * 1000)
    steps = "  ".join(f"{label} {ms:.3f}" for label, ms in best.items())
    print(f"fastest of {batches} batches, ms per flow: {steps}  total {sum(best.values()):.3f}")


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", type=int, default=300)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--statements", action="store_true", help="list each SQL statement")
    parser.add_argument("--profile", action="store_true", help="print a cProfile too")
    parser.add_argument("--batches", type=int, default=0,
                        help="also time each step in this many batches of --flows flows and "
                             "print the fastest batch's ms per flow (steady on a busy machine)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app, stack = build(args.backend, tmp)
        with stack:
            rp, student = seed(app)
            c = app.test_client()
            Browser(c).sign_in_and_authorize(rp, student, scope="openid profile")
            one_flow(c, rp, None)  # warm caches
            from idp.ops.heap import freeze_what_is_held

            freeze_what_is_held()  # as a serving process does (idp.ops.heap)
            counts = Counts(app)
            one_flow(c, rp, counts)
            print(f"per flow ({args.backend}): SQL statements and Redis commands")
            for label in ("authorize", "token", "userinfo"):
                print(f"  {label:10} sql={counts.sql[label]:3}  redis={counts.redis[label]:3}")
                if args.statements:
                    for statement in counts.statements.get(label, []):
                        print("      ", statement)
            start = time.process_time()
            for _ in range(args.flows):
                one_flow(c, rp, None)
            cpu = (time.process_time() - start) / args.flows * 1000
            print(f"client+server CPU per flow in this process: {cpu:.2f} ms")
            if args.batches:
                print_step_minimums(c, rp, args.flows, args.batches)
            if not args.profile:
                return
            # CPU time, not the wall clock: a Redis or PostgreSQL round trip's wait is not
            # work this process does (the harness's other threads run meanwhile).
            profile = cProfile.Profile(time.process_time)
            profile.enable()
            for _ in range(args.flows):
                one_flow(c, rp, None)
            profile.disable()
            if os.environ.get("PROFILE_DUMP"):
                profile.dump_stats(os.environ["PROFILE_DUMP"])
            out = io.StringIO()
            order = os.environ.get("PROFILE_SORT", "cumulative")  # or tottime
            pstats.Stats(profile, stream=out).sort_stats(order).print_stats(args.top)
            print(out.getvalue())


if __name__ == "__main__":
    main()
