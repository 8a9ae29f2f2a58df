"""Shared fixtures: one provider per test session on the selected backend.

``MYNAGATE_TEST_BACKEND=sqlite`` (default): SQLite file + in-process store.
``MYNAGATE_TEST_BACKEND=postgres``: a fresh PostgreSQL database + Redis (unique key prefix).
With ``CI=true`` a missing service fails the run instead of skipping.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKEND = os.environ.get("MYNAGATE_TEST_BACKEND", "sqlite")
IN_CI = os.environ.get("CI") == "true"
PG_ADMIN_URL = os.environ.get("MYNAGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MYNAGATE_TEST_REDIS", "redis://127.0.0.1:6379/15")


def need(condition: bool, reason: str) -> None:
    """Skip locally, fail in CI: a missing service must never look like a pass there."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)


def compile_translations() -> None:
    # `compile` has no -q of its own: the quiet flag belongs before the command. check=True:
    # a catalog that does not compile must fail the run, not leave the pages untranslated.
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "--quiet", "compile",
                    "-d", str(ROOT / "idp" / "translations")], check=True, capture_output=True)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgres`` test what only PostgreSQL + Redis have (two instances on one
    database, pub/sub, the Redis stream): the SQLite pass deselects them, so they are
    neither run against the wrong backend nor reported as skipped."""
    if BACKEND == "postgres":
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("postgres") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@contextmanager
def fresh_postgres_database(prefix: str = "mynagate_test_") -> Iterator[str]:
    """A new, empty PostgreSQL database (its name) that is dropped afterwards; Redis must
    answer too. Fails in CI (skips locally) when either is unreachable."""
    import redis

    from idp.store.scratch import scratch_database

    try:
        redis.Redis.from_url(REDIS_URL).ping()
        database = scratch_database(PG_ADMIN_URL, prefix)
        url = database.__enter__()
    except Exception as exc:  # noqa: BLE001
        need(False, f"PostgreSQL/Redis not reachable: {exc}")
    try:
        yield url.rsplit("/", 1)[1]
    finally:
        database.__exit__(None, None, None)


@pytest.fixture(scope="session")
def backend_urls(tmp_path_factory):
    if BACKEND == "postgres":
        with fresh_postgres_database() as name:
            yield {"database_url": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name,
                   "redis_url": REDIS_URL}
        return
    db = tmp_path_factory.mktemp("db") / "idp.db"
    yield {"database_url": f"sqlite:///{db}", "redis_url": ""}


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def settings_overrides(backend_urls, keys_dir):
    return {
        "env": "test",
        "issuer": "http://127.0.0.1:5000",
        "secret_key": "test-secret-key-0123456789",
        "pairwise_secret": "test-pairwise-secret-0123456789",
        "keys_dir": keys_dir,
        "jpki_revocation": "none",
        "jpki_trust_anchors": [],
        **backend_urls,
    }


def build_app(settings_values: dict, *, migrate: bool = True):
    """A provider app for tests on the given settings, with a Redis key prefix of its own;
    release it with :func:`close_app`."""
    from idp.app import create_app
    from idp.settings import Settings
    from idp.store.migrate import upgrade_database

    settings = Settings.load(settings_values, environ={})
    if migrate:
        upgrade_database(settings.database_url)
    application = create_app(settings)
    application.config.update(TESTING=True)
    use_unique_redis_prefix(application)
    return application


def close_app(application) -> None:
    """Stop what the app runs in the background, drop its Redis keys, close its pool."""
    svc = application.extensions["mynagate"]
    card = svc.card
    if card.refresher is not None:
        card.refresher.stop()
    svc.events.flush()
    svc.events.close()
    svc.bus.close()
    if hasattr(svc.store, "flush_prefix"):
        svc.store.flush_prefix()
    svc.db.dispose()


@contextmanager
def provider_app(settings_values: dict, *, migrate: bool = True):
    """:func:`build_app` for a ``with`` block (module- and session-scoped fixtures)."""
    application = build_app(settings_values, migrate=migrate)
    try:
        yield application
    finally:
        close_app(application)


@pytest.fixture(scope="session")
def app(settings_overrides):
    compile_translations()
    with provider_app(settings_overrides) as application:
        yield application


def use_unique_redis_prefix(application) -> None:
    """Give this run its own Redis key prefix: test runs in parallel (several engineers, CI)
    share Redis db 15, and each run's final flush_prefix would otherwise delete the live
    sessions, codes and login transactions of the others."""
    store = application.extensions["mynagate"].store
    if hasattr(store, "flush_prefix"):
        store._p = f"mynagate-test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture(scope="session")
def svc(app):
    return app.extensions["mynagate"]


@pytest.fixture
def client(app):
    return app.test_client()


# ----------------------------------------------------------------------------- data
@dataclass
class Student:
    id: str
    school_code: str
    login_id: str
    password: str


@dataclass
class RP:
    client_id: str
    client_secret: str | None
    redirect_uri: str
    sector: str
    auth_method: str


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def school(svc):
    from idp.store.models import School

    with svc.db.session() as s:
        row = School(code=unique("sch"), name="テスト小学校")
        s.add(row)
    return row


@pytest.fixture
def make_student(svc, school):
    from idp.signin.passwords import hash_password
    from idp.store.models import Account

    def make(password: str | None = None, **fields) -> Student:
        password = password or "correct horse battery " + secrets.token_hex(2)
        login = unique("stu")
        with svc.db.session() as s:
            row = Account(school_id=school.id, login_id=login, display_name="山田 花子",
                          password_hash=hash_password(password), grade="5", class_name="2",
                          **fields)
            s.add(row)
        return Student(row.id, school.code, login, password)

    return make


@pytest.fixture
def student(make_student):
    return make_student()


@pytest.fixture
def make_rp(svc):
    from idp.clients.registry import ClientSpec, register_client

    def make(host: str = "rp.example.test", auth_method: str = "client_secret_basic",
             **spec_fields) -> RP:
        redirect = spec_fields.pop("redirect_uris", None) or [f"https://{host}/callback"]
        spec = ClientSpec(name=spec_fields.pop("name", "テスト算数アプリ"),
                          redirect_uris=redirect,
                          post_logout_redirect_uris=spec_fields.pop(
                              "post_logout_redirect_uris", [f"https://{host}/bye"]),
                          token_endpoint_auth_method=auth_method, **spec_fields)
        row, secret = register_client(svc, spec, actor="test")
        return RP(row.client_id, secret, redirect[0], row.sector, auth_method)

    return make


@pytest.fixture
def rp(make_rp):
    return make_rp()


# ----------------------------------------------------------------------------- flow helpers
def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"=").decode()
    return verifier, challenge


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in page"
    return match.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Browser:
    """Drives the authorization flow through the Flask test client like a person would."""

    def __init__(self, client) -> None:
        self.c = client

    def authorize(self, rp: RP, **params):
        verifier, challenge = pkce_pair()
        query = {"response_type": "code", "client_id": rp.client_id,
                 "redirect_uri": rp.redirect_uri, "scope": "openid",
                 "code_challenge": challenge, "code_challenge_method": "S256"}
        query.update(params)
        query = {k: v for k, v in query.items() if v is not None}
        response = self.c.get("/authorize", query_string=query)
        return response, verifier

    def follow_to_login(self, response):
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        assert "/login" in response.headers["Location"]
        return self.c.get(response.headers["Location"])

    def password_login(self, login_page, student: Student):
        html = login_page.get_data(as_text=True)
        txn = re.search(r'name="txn" type="hidden" value="([^"]*)"', html)
        card = re.search(r'name="card" type="hidden" value="([^"]*)"', html)
        return self.c.post("/login", data={
            "csrf_token": csrf_of(html), "school": student.school_code,
            "login_id": student.login_id, "password": student.password,
            "txn": txn.group(1) if txn else "", "card": card.group(1) if card else ""})

    def consent(self, response, allow: bool = True):
        assert response.status_code == 303
        page = self.c.get(response.headers["Location"])
        html = page.get_data(as_text=True)
        txn = re.search(r'name="txn" type="hidden" value="([^"]*)"', html).group(1)
        data = {"csrf_token": csrf_of(html), "txn": txn}
        data["allow" if allow else "deny"] = "1"
        return self.c.post("/consent", data=data)

    def sign_in_and_authorize(self, rp: RP, student: Student, **params):
        """Full journey to the redirect back at the RP; returns (query, verifier)."""
        response, verifier = self.authorize(rp, **params)
        while response.status_code == 303:
            location = response.headers["Location"]
            if location.startswith("/login"):
                response = self.password_login(self.c.get(location), student)
            elif location.startswith("/consent"):
                response = self.consent(response)
            elif location.startswith("/authorize"):
                response = self.c.get(location)
            else:
                break
        assert response.status_code in (302, 303), response.get_data(as_text=True)[:800]
        location = response.headers["Location"]
        assert location.startswith(rp.redirect_uri), location
        return query_of(location), verifier


@pytest.fixture
def browser(client):
    return Browser(client)


def token_request(client, rp: RP, data: dict, auth: bool = True):
    headers = {}
    data = dict(data)
    if auth and rp.auth_method == "client_secret_basic":
        raw = f"{rp.client_id}:{rp.client_secret}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
    elif auth and rp.auth_method == "client_secret_post":
        data.update(client_id=rp.client_id, client_secret=rp.client_secret)
    elif rp.auth_method == "none":
        data["client_id"] = rp.client_id
    return client.post("/token", data=data, headers=headers)


def redeem(client, rp: RP, code: str, verifier: str):
    return token_request(client, rp, {"grant_type": "authorization_code", "code": code,
                                      "redirect_uri": rp.redirect_uri,
                                      "code_verifier": verifier})


@pytest.fixture(params=["memory", "redis"])
def any_store(request):
    """The short-lived store, once in-process and once on Redis (a prefix of its own)."""
    from idp.store.shortlived import MemoryStore

    if request.param == "memory":
        yield MemoryStore()
        return
    with redis_test_store() as store:
        yield store


@pytest.fixture
def redis_store():
    """The short-lived store on Redis only (a prefix of its own)."""
    with redis_test_store() as store:
        yield store


@contextmanager
def redis_test_store():
    import redis

    from idp.store.shortlived import RedisStore

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        need(False, f"Redis not reachable: {exc}")
    store = RedisStore(REDIS_URL, prefix=f"test-{uuid.uuid4().hex}:")
    try:
        yield store
    finally:
        store.flush_prefix()
