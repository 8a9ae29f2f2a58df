"""PostgreSQL or Redis unreachable → 503 with an OAuth error or a readable page, nothing half
written, and the provider serves again once they are back (no restart)."""

from __future__ import annotations

import pytest

from tests.conftest import (
    PG_ADMIN_URL,
    Browser,
    build_app,
    close_app,
    fresh_postgres_database,
    redeem,
    unique,
)
from tests.provider.tcp_proxy import CuttableProxy


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """A provider on PostgreSQL + Redis reached through cuttable proxies."""
    with fresh_postgres_database("mynagate_fault_") as name:
        pg_proxy = CuttableProxy("127.0.0.1", 5432)
        redis_proxy = CuttableProxy("127.0.0.1", 6379)
        base = PG_ADMIN_URL.rsplit("@", 1)[0]
        app = build_app({
            "env": "test", "issuer": "http://127.0.0.1:5000",
            "secret_key": "fault-secret-key-0123456789",
            "pairwise_secret": "fault-pairwise-secret-0123456789",
            "keys_dir": str(tmp_path_factory.mktemp("fault-keys")),
            "database_url": f"{base}@127.0.0.1:{pg_proxy.port}/{name}",
            "redis_url": f"redis://127.0.0.1:{redis_proxy.port}/14",
            "jpki_revocation": "none", "jpki_trust_anchors": [],
        })
        yield app, pg_proxy, redis_proxy
        redis_proxy.restore()
        pg_proxy.restore()
        close_app(app)
        pg_proxy.close()
        redis_proxy.close()


def _seed(app):
    from idp.clients.registry import ClientSpec, register_client
    from idp.signin.passwords import hash_password
    from idp.store.models import Account, School
    from tests.conftest import RP, Student

    svc = app.extensions["mynagate"]
    with svc.db.session() as s:
        school = School(code=unique("f"), name="障害テスト校")
        s.add(school)
        s.flush()
        account = Account(school_id=school.id, login_id="kid", display_name="kid",
                          password_hash=hash_password("fault tolerant pw"))
        s.add(account)
    row, secret = register_client(svc, ClientSpec(
        name="fault rp", redirect_uris=["https://rp.fault.test/cb"],
        post_logout_redirect_uris=[]), actor="test")
    return (Student(account.id, school.code, "kid", "fault tolerant pw"),
            RP(row.client_id, secret, "https://rp.fault.test/cb", row.sector,
               "client_secret_basic"))


def test_redis_down_gives_503_and_recovers(faulty):
    app, _pg, redis_proxy = faulty
    student, rp = _seed(app)
    browser = Browser(app.test_client())
    redis_proxy.cut()
    try:
        page, _ = browser.authorize(rp)
        assert page.status_code == 503
        assert "こみあって" in page.get_data(as_text=True)
        token = redeem(app.test_client(), rp, "some-code", "v" * 43)
        assert token.status_code == 503
        assert token.get_json()["error"] == "temporarily_unavailable"
        assert token.headers["Retry-After"]
    finally:
        redis_proxy.restore()
    query, verifier = browser.sign_in_and_authorize(rp, student)
    assert redeem(browser.c, rp, query["code"], verifier).status_code == 200


def test_database_down_gives_503_writes_nothing_and_recovers(faulty):
    from sqlalchemy import func, select

    from idp.store.models import Token

    app, pg_proxy, _redis = faulty
    svc = app.extensions["mynagate"]
    student, rp = _seed(app)
    browser = Browser(app.test_client())
    query, verifier = browser.sign_in_and_authorize(rp, student)
    with svc.db.session() as s:
        before = s.scalar(select(func.count()).select_from(Token))
    pg_proxy.cut()
    try:
        response = redeem(browser.c, rp, query["code"], verifier)
        assert response.status_code == 503
        assert response.get_json()["error"] == "temporarily_unavailable"
        info = browser.c.get("/userinfo", headers={"Authorization": "Bearer abc"})
        assert info.status_code == 503
        login = browser.c.get("/login")
        assert login.status_code == 503
    finally:
        pg_proxy.restore()
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Token)) == before
    query, verifier = browser.sign_in_and_authorize(rp, student)
    assert redeem(browser.c, rp, query["code"], verifier).status_code == 200
