"""Helpers for the protocol tests: a browser per test with its own client IP (so the per-IP
throttle of one test never slows another), ID-token verification against /jwks.json, and a
clock that can be moved forward without sleeping."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
from dataclasses import dataclass

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import RP, Browser, Student, redeem, token_request


def random_ip() -> str:
    return "10.{}.{}.{}".format(*secrets.token_bytes(3))


@pytest.fixture
def client(app):
    """A fresh test client (own cookie jar) from its own client IP."""
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = random_ip()
    return c


@pytest.fixture
def new_browser(app):
    """Another, independent browser (own cookies, own IP)."""

    def make() -> Browser:
        c = app.test_client()
        c.environ_base["REMOTE_ADDR"] = random_ip()
        return Browser(c)

    return make


@pytest.fixture(scope="module")
def shared_student(app, svc, school):
    """One student for the tests that do not care who signs in (Argon2 is slow on purpose)."""
    from idp.signin.passwords import hash_password
    from idp.store.models import Account

    password = "correct horse battery " + secrets.token_hex(2)
    login = "stu-" + secrets.token_hex(4)
    with svc.db.session() as s:
        row = Account(school_id=school.id, login_id=login, display_name="山田 花子",
                      password_hash=hash_password(password), grade="5", class_name="2")
        s.add(row)
    return Student(row.id, school.code, login, password)


@dataclass
class Tokens:
    body: dict
    claims: dict
    verifier: str
    query: dict


def verify_id_token(client, rp_or_client_id, id_token: str, alg: str = "RS256") -> dict:
    """Check the ID token's signature with the published JWKS; returns its claims."""
    jwks = client.get("/jwks.json").get_json()
    token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=[alg])
    assert token.header["alg"] == alg
    assert token.header["kid"] in {k["kid"] for k in jwks["keys"]}
    client_id = rp_or_client_id.client_id if isinstance(rp_or_client_id, RP) \
        else rp_or_client_id
    assert token.claims["aud"] == client_id
    return token.claims


def sign_in_tokens(browser: Browser, rp: RP, student: Student, alg: str = "RS256",
                   **params) -> Tokens:
    """Sign in through the browser, redeem the code, verify the ID token."""
    query, verifier = browser.sign_in_and_authorize(rp, student, **params)
    response = redeem(browser.c, rp, query["code"], verifier)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    claims = verify_id_token(browser.c, rp, body["id_token"], alg)
    return Tokens(body, claims, verifier, query)


def userinfo(client, access_token: str, how: str = "get"):
    if how == "get":
        return client.get("/userinfo", headers={"Authorization": "Bearer " + access_token})
    if how == "post-header":
        return client.post("/userinfo", headers={"Authorization": "Bearer " + access_token})
    return client.post("/userinfo", data={"access_token": access_token})


def refresh(client, rp: RP, refresh_token: str, **extra):
    return token_request(client, rp, {"grant_type": "refresh_token",
                                      "refresh_token": refresh_token, **extra})


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def keys_passed_to(monkeypatch, store, method: str) -> list[str]:
    """Spy on ``store.<method>`` (``get``, ``put``...): the keys it is called with, in order,
    the calls still going through."""
    seen: list[str] = []
    real = getattr(store, method)

    def spy(key, *args, **kwargs):
        seen.append(key)
        return real(key, *args, **kwargs)

    monkeypatch.setattr(store, method, spy)
    return seen


@pytest.fixture
def travel(monkeypatch):
    """Move the provider's wall clock forward (``travel(30)``) without sleeping.

    Patches ``time.time`` (sessions, auth_time, ID tokens) and the ``utcnow`` that token
    expiry is computed with. Short-lived store TTLs are not affected (Redis keeps real time).
    """
    offset = [0.0]
    real_time = time.time
    real_now = dt.datetime.now

    def fake_time() -> float:
        return real_time() + offset[0]

    def fake_utcnow() -> dt.datetime:
        return (real_now(dt.UTC) + dt.timedelta(seconds=offset[0])).replace(tzinfo=None)

    monkeypatch.setattr(time, "time", fake_time)
    for module in ("idp.store.models", "idp.oidc.tokens", "idp.oidc.grants",
                   "idp.auth.login_views"):
        monkeypatch.setattr(f"{module}.utcnow", fake_utcnow, raising=False)

    def move(seconds: float) -> None:
        offset[0] += seconds

    return move
