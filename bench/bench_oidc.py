"""Throughput of the provider's hot paths on one warm process (embedded backend by default).

Prints requests per second for: a full authorization-code redemption (/token with PKCE and
ID token signing), UserInfo, and discovery. Run: .venv/bin/python bench/bench_oidc.py
Set MYNAGATE_BENCH_BACKEND=postgres to use PostgreSQL + Redis on localhost.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

# PostgreSQL mode: a database of its own (created through the `test` admin database, dropped
# afterwards) and the bench's Redis db 12 under a prefix of its own, deleted afterwards: the
# test suite uses db 15, the deploy tests db 13 (docs/testing.md).
PG_ADMIN_URL = os.environ.get("MYNAGATE_BENCH_PG",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MYNAGATE_BENCH_REDIS", "redis://127.0.0.1:6379/12")


@contextmanager
def built_app() -> Iterator:
    from idp.app import create_app
    from idp.settings import Settings
    from idp.store.migrate import upgrade_database
    from idp.store.scratch import scratch_database

    tmp = tempfile.mkdtemp()
    overrides = {"env": "test", "keys_dir": tmp, "jpki_revocation": "none",
                 "jpki_trust_anchors": [], "log_level": "WARNING",
                 "database_url": f"sqlite:///{tmp}/bench.db"}
    with ExitStack() as cleanup:
        if os.environ.get("MYNAGATE_BENCH_BACKEND") == "postgres":
            url = cleanup.enter_context(scratch_database(PG_ADMIN_URL, "mynagate_bench_"))
            overrides.update(database_url=url, redis_url=REDIS_URL)
        settings = Settings.load(overrides, environ={})
        upgrade_database(settings.database_url)
        app = create_app(settings)
        services = app.extensions["mynagate"]
        if hasattr(services.store, "flush_prefix"):
            services.store._p = f"mynagate-bench-{uuid.uuid4().hex[:10]}:"
            cleanup.callback(services.store.flush_prefix)
        cleanup.callback(services.db.dispose)
        # First (callbacks run last-in first-out): the event writer and the bus stop before
        # their keys go.
        cleanup.callback(services.bus.close)
        cleanup.callback(services.events.close)
        cleanup.callback(services.events.flush)
        yield app


def main(seconds: float = 3.0) -> None:
    with built_app() as app:
        measure_all(app, seconds)


def measure_all(app, seconds: float) -> None:
    from idp.clients.registry import ClientSpec, register_client
    from idp.signin.context import ACR_PASSWORD, AuthContext, SignedInUser
    from idp.signin.passwords import hash_password
    from idp.store.models import Account, School

    svc = app.extensions["mynagate"]
    with svc.db.session() as s:
        school = School(code="bench", name="bench")
        s.add(school)
        s.flush()
        account = Account(school_id=school.id, login_id="b", password_hash=hash_password(
            "benchmark password"))
        s.add(account)
    row, secret = register_client(svc, ClientSpec(
        name="bench", redirect_uris=["https://rp.bench/cb"], post_logout_redirect_uris=[]),
        actor="bench")
    auth = "Basic " + base64.b64encode(f"{row.client_id}:{secret}".encode()).decode()
    grant_user = SignedInUser(account, AuthContext(int(time.time()), ACR_PASSWORD, ["pwd"],
                                                   "sid"))
    client = app.test_client()

    def issue_code() -> tuple[str, str]:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        with app.test_request_context("/authorize", query_string={
                "response_type": "code", "client_id": row.client_id,
                "redirect_uri": "https://rp.bench/cb", "scope": "openid profile",
                "code_challenge": challenge, "code_challenge_method": "S256"}):
            server = app.extensions["mynagate.oauth2"]
            grant = server.get_consent_grant(end_user=grant_user)
            response = server.create_authorization_response(grant_user=grant_user,
                                                            grant=grant)
        code = response.headers["Location"].split("code=")[1].split("&")[0]
        return code, verifier

    def measure(name: str, prepare, call) -> None:
        done, spent = 0, 0.0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            arg = prepare()
            start = time.perf_counter()
            call(arg)
            spent += time.perf_counter() - start
            done += 1
        print(f"{name}: {done / spent:,.0f} req/s ({spent / done * 1000:.2f} ms each, "
              f"{done} requests)")

    tokens: list[str] = []

    def redeem(arg):
        code, verifier = arg
        r = client.post("/token", headers={"Authorization": auth}, data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": "https://rp.bench/cb"})
        assert r.status_code == 200, r.get_json()
        tokens.append(r.get_json()["access_token"])

    measure("token (code + PKCE + RS256 ID token)", issue_code, redeem)

    def userinfo(token):
        r = client.get("/userinfo", headers={"Authorization": "Bearer " + token})
        assert r.status_code == 200

    measure("userinfo", lambda: tokens[-1], userinfo)
    measure("discovery", lambda: None,
            lambda _: client.get("/.well-known/openid-configuration"))


if __name__ == "__main__":
    main()
