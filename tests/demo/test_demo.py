"""The ``make run`` demo: idempotent seed, persisted development secrets, the demo RP's ID
token checks, and a real HTTP journey through both demo apps showing pairwise subjects."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func, select

from idp.demo.rp import IdTokenError, verify_id_token
from idp.demo.seed import (
    CLIENTS_FILE,
    DEMO_RPS,
    DEMO_SCHOOL_CODE,
    DEMO_STUDENT_LOGIN,
    SECRETS_FILE,
    demo_enrolment_code,
    demo_settings,
    reset_demo_password,
    seed_demo,
)
from idp.demo.serve import serve_demo
from idp.oidc.claims import subject_for
from idp.signin.context import ACR_CARD, ACR_PASSWORD
from idp.store.models import Account, Client, School
from tests.conftest import Student, use_unique_redis_prefix
from tests.rp_node.live import HttpBrowser


def _counts(svc) -> tuple[int, int, int]:
    with svc.db.session() as db:
        return (db.scalar(select(func.count()).select_from(School)),
                db.scalar(select(func.count()).select_from(Account)),
                db.scalar(select(func.count()).select_from(Client)))


# ----------------------------------------------------------------------------- seed
def test_seed_demo_is_idempotent(svc, tmp_path):
    rps = [replace(rp, port=rp.port + 1000) for rp in DEMO_RPS]  # ports no other test uses
    first = seed_demo(svc, rps=rps, state_dir=tmp_path)
    before = _counts(svc)
    second = seed_demo(svc, rps=rps, state_dir=tmp_path)
    assert _counts(svc) == before, "a second seed must create nothing"
    assert second["school"] == {**first["school"], "created": False}
    assert second["student"]["created"] is False and second["student"]["password"] is None
    for key in ("drill", "notes"):
        assert second["clients"][key]["created"] is False
        assert second["clients"][key]["client_id"] == first["clients"][key]["client_id"]
        assert second["clients"][key]["client_secret"] == first["clients"][key]["client_secret"]
    # Loopback apps are each a sector of their own (issue 8): different subs.
    assert first["clients"]["drill"]["sector"] == "client:" + first["clients"]["drill"][
        "client_id"]
    assert first["clients"]["notes"]["sector"] == "client:" + first["clients"]["notes"][
        "client_id"]
    saved = tmp_path / CLIENTS_FILE
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert set(json.loads(saved.read_text())) == {"drill", "notes"}


def test_seed_registers_again_when_the_redirect_uri_changes(svc, tmp_path):
    rps = [replace(rp, port=rp.port + 2000) for rp in DEMO_RPS]
    first = seed_demo(svc, rps=rps, state_dir=tmp_path)
    moved = [replace(rps[0], port=rps[0].port + 1), rps[1]]
    second = seed_demo(svc, rps=moved, state_dir=tmp_path)
    assert second["clients"]["drill"]["created"] is True
    assert second["clients"]["drill"]["client_id"] != first["clients"]["drill"]["client_id"]
    assert second["clients"]["drill"]["redirect_uri"] == moved[0].redirect_uri
    assert second["clients"]["notes"]["created"] is False


def test_the_student_password_is_printed_once_and_can_be_reset(svc, tmp_path):
    from idp.signin.passwords import verify_password

    seed_demo(svc, rps=[], state_dir=tmp_path)  # the student exists after this, either way
    password = reset_demo_password(svc)
    assert re.fullmatch(r"[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}", password)
    with svc.db.session() as db:
        row = db.scalar(select(Account).join(School).where(
            School.code == DEMO_SCHOOL_CODE, Account.login_id == DEMO_STUDENT_LOGIN))
        assert row.password_hash.startswith("$argon2id$")
        assert verify_password(row.password_hash, password)
    assert seed_demo(svc, rps=[], state_dir=tmp_path)["student"]["password"] is None


def test_the_demo_admin_signs_in_to_the_admin_pages_and_enrols_totp(app, svc, tmp_path):
    from tests.conftest import csrf_of

    seeded = seed_demo(svc, rps=[], state_dir=tmp_path)
    assert seeded["admin"]["login"] == "demo-admin"
    password = reset_demo_password(svc, "demo-admin")
    with pytest.raises(LookupError):
        reset_demo_password(svc, "someone-else")  # only the demo's own accounts
    c = app.test_client()
    page = c.get("/admin/login")
    response = c.post("/admin/login", data={
        "csrf_token": csrf_of(page.get_data(as_text=True)), "school": DEMO_SCHOOL_CODE,
        "login_id": "demo-admin", "password": password, "next": ""})
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/totp")
    page = c.get("/admin/totp").get_data(as_text=True)
    assert 'id="totp-secret"' not in page  # the password alone shows no TOTP key (issue 8)
    code = seeded["admin"]["enrolment_code"] or demo_enrolment_code(svc)
    response = c.post("/admin/totp/enrol", data={"csrf_token": csrf_of(page),
                                                 "enrolment_code": code})
    assert response.status_code == 303
    assert 'id="totp-secret"' in c.get("/admin/totp").get_data(as_text=True)


def test_dev_secrets_are_generated_once_and_kept(tmp_path):
    first = demo_settings(tmp_path, environ={})
    again = demo_settings(tmp_path, environ={})
    assert first.env == "development"
    assert first.issuer == "http://127.0.0.1:5000"
    assert first.pairwise_secret == again.pairwise_secret  # subs survive a restart
    assert first.secret_key == again.secret_key
    assert first.database_url == f"sqlite:///{tmp_path.resolve() / 'mynagate.db'}"
    assert stat.S_IMODE((tmp_path / SECRETS_FILE).stat().st_mode) == 0o600
    other = demo_settings(tmp_path / "other", environ={})
    assert other.pairwise_secret != first.pairwise_secret


def test_demo_settings_let_the_environment_win(tmp_path):
    settings = demo_settings(tmp_path, environ={"IDP_DATABASE_URL": "sqlite:///elsewhere.db"})
    assert settings.database_url == "sqlite:///elsewhere.db"
    assert demo_settings(tmp_path, issuer="http://127.0.0.1:6123", environ={}).issuer == \
        "http://127.0.0.1:6123"


# ----------------------------------------------------------------------------- ID token
@pytest.fixture(scope="module")
def signer():
    key = RSAKey.generate_key(2048, auto_kid=True)
    jwks = {"keys": [{**key.as_dict(private=False), "alg": "RS256", "kid": key.kid}]}
    return key, jwks


def _id_token(key, **claims) -> str:
    now = int(time.time())
    base = {"iss": "http://127.0.0.1:5000", "aud": "rp-1", "sub": "s-1", "iat": now,
            "exp": now + 300, "nonce": "n-1"}
    base.update(claims)
    base = {k: v for k, v in base.items() if v is not None}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, base, key)


def _verify(token, jwks, nonce="n-1"):
    return verify_id_token(token, jwks, issuer="http://127.0.0.1:5000", client_id="rp-1",
                           nonce=nonce)


def test_demo_rp_accepts_a_good_id_token(signer):
    key, jwks = signer
    assert _verify(_id_token(key), jwks)["sub"] == "s-1"


@pytest.mark.parametrize("claims, nonce", [
    ({"iss": "http://evil.example"}, "n-1"),
    ({"aud": "rp-2"}, "n-1"),
    ({"aud": ["rp-1", "rp-2"]}, "n-1"),  # several audiences and no azp
    ({"exp": int(time.time()) - 3600}, "n-1"),
    ({"nonce": "other"}, "n-1"),
    ({"nonce": None}, "n-1"),
    ({"sub": None}, "n-1"),
])
def test_demo_rp_refuses_a_bad_id_token(signer, claims, nonce):
    key, jwks = signer
    with pytest.raises(IdTokenError):
        _verify(_id_token(key, **claims), jwks, nonce)


def test_demo_rp_refuses_a_token_signed_by_another_key(signer):
    _key, jwks = signer
    stranger = RSAKey.generate_key(2048, auto_kid=True)
    with pytest.raises(IdTokenError):
        _verify(_id_token(stranger), jwks)


# ----------------------------------------------------------------------------- journey
@pytest.fixture(scope="module")
def demo(app, settings_overrides, tmp_path_factory):
    """The whole demo over real HTTP on free ports, on the test database and store."""
    overrides = {k: v for k, v in settings_overrides.items() if k != "issuer"}
    servers = serve_demo(state_dir=tmp_path_factory.mktemp("demo-state"), provider_port=0,
                         rps=[replace(rp, port=0) for rp in DEMO_RPS], overrides=overrides)
    store = servers.provider_app.extensions["mynagate"].store
    use_unique_redis_prefix(servers.provider_app)  # before any request: keys of its own
    yield servers
    servers.stop()
    if hasattr(store, "flush_prefix"):
        store.flush_prefix()


@pytest.fixture(scope="module")
def demo_student(demo) -> Student:
    svc = demo.provider_app.extensions["mynagate"]
    password = demo.seed["student"]["password"] or reset_demo_password(svc)
    with svc.db.session() as db:
        row = db.scalar(select(Account).join(School).where(
            School.code == DEMO_SCHOOL_CODE, Account.login_id == DEMO_STUDENT_LOGIN))
        return Student(row.id, DEMO_SCHOOL_CODE, DEMO_STUDENT_LOGIN, password)


def _shown(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert match, f"#{element_id} not on the page"
    return match.group(1).strip()


def test_two_demo_apps_get_different_subs_for_the_same_student(demo, demo_student):
    svc = demo.provider_app.extensions["mynagate"]
    browser = HttpBrowser(demo_student)
    subs = {}
    for key, (rp, _served) in demo.rps.items():
        url, page = browser.go(f"{rp.origin}/login")
        assert page.status_code == 200, page.text[:500]
        assert url == f"{rp.origin}/", url
        subs[key] = _shown(page.text, "sub")
        assert _shown(page.text, "acr") == ACR_PASSWORD
        assert _shown(page.text, "amr") == "pwd"
        with svc.db.session() as db:
            client = db.get(Client, demo.seed["clients"][key]["client_id"])
            assert subs[key] == subject_for(svc.settings.pairwise_secret, client,
                                            demo_student.id)
    assert subs["drill"] != subs["notes"]
    # One sign-in served both apps: the second went straight to consent.
    assert sum("/login?" in u for u in browser.visited) == 1

    # Signing in again gives the same sub (stable per sector).
    rp, _ = demo.rps["drill"]
    _url, page = browser.go(f"{rp.origin}/login")
    assert _shown(page.text, "sub") == subs["drill"]


def test_demo_app_logout_goes_through_the_provider(demo, demo_student):
    rp, _ = demo.rps["notes"]
    browser = HttpBrowser(demo_student)
    _url, page = browser.go(f"{rp.origin}/login")
    assert 'id="sub"' in page.text
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    response = browser.http.post(f"{rp.origin}/logout", data={"token": token},
                                 allow_redirects=False, timeout=30)
    assert response.status_code == 303
    end_session = response.headers["Location"]
    assert end_session.startswith(demo.issuer + "/logout?")
    assert parse_qs(urlsplit(end_session).query)["post_logout_redirect_uri"] == \
        [rp.post_logout_redirect_uri]
    url, page = browser.go(end_session)
    assert url.startswith(rp.post_logout_redirect_uri), url
    assert "サインアウトしました" in page.text
    # Signed out at the provider too: the next sign-in asks for the password again.
    before = sum("/login?" in u for u in browser.visited)
    browser.go(f"{rp.origin}/login")
    assert sum("/login?" in u for u in browser.visited) == before + 1


def test_demo_card_link_asks_for_the_card_level(demo):
    rp, _ = demo.rps["drill"]
    browser = HttpBrowser()
    response = browser.http.get(f"{rp.origin}/login?card=1", allow_redirects=False,
                                timeout=30)
    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["acr_values"] == [ACR_CARD]
    assert query["code_challenge_method"] == ["S256"] and query["state"] and query["nonce"]


def test_demo_app_refuses_a_callback_it_did_not_start(demo):
    rp, _ = demo.rps["drill"]
    browser = HttpBrowser()
    response = browser.http.get(f"{rp.origin}/callback?code=x&state=y&iss={demo.issuer}",
                                timeout=30)
    assert response.status_code == 400
    assert "state mismatch" in response.text


def test_the_banner_says_what_to_open_and_how_to_sign_in(demo):
    from idp.demo.serve import describe

    text = describe(demo)
    assert f"{demo.issuer}/admin/" in text
    # The enrolment code the first admin sign-in asks for is printed beside the password.
    code = demo.seed["admin"]["enrolment_code"]
    assert ("登録コード: " + code if code else "reset-password --login demo-admin") in text
    assert "demo-student" in text and "demo-admin" in text and DEMO_SCHOOL_CODE in text
    for rp, _served in demo.rps.values():
        assert f"{rp.origin}/" in text


def test_demo_app_refuses_a_response_from_another_issuer_and_spends_the_flow(demo):
    """A mix-up attacker (RFC 9207) answers the demo app's own sign-in with the right state
    but another ``iss``: refused before any code is redeemed, and the flow is gone, so the
    same state replayed with our issuer is refused too."""
    rp, _ = demo.rps["notes"]
    browser = HttpBrowser()
    started = browser.http.get(f"{rp.origin}/login", allow_redirects=False, timeout=30)
    assert started.status_code == 303
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    forged = browser.http.get(f"{rp.origin}/callback", timeout=30, params={
        "code": "stolen", "state": state, "iss": "https://evil.example"})
    assert forged.status_code == 400 and "Wrong issuer" in forged.text
    replay = browser.http.get(f"{rp.origin}/callback", timeout=30, params={
        "code": "stolen", "state": state, "iss": demo.issuer})
    assert replay.status_code == 400 and "state mismatch" in replay.text
    assert 'id="sub"' not in browser.http.get(f"{rp.origin}/", timeout=30).text


def test_demo_app_keeps_a_bounded_number_of_signed_in_people():
    """Someone signing in again and again cannot grow the demo app's memory: the oldest
    sign-in leaves first, the newest stays."""
    from idp.demo.rp import MAX_SIGNED_IN, SignedIn

    assert SignedIn().limit == MAX_SIGNED_IN
    people = SignedIn(limit=3)
    keys = [people.add({"sub": str(n)}) for n in range(4)]
    assert people.get(keys[0]) is None
    assert [people.get(k)["sub"] for k in keys[1:]] == ["1", "2", "3"]
    assert people.get(None) is None and people.get("not-a-key") is None
    people.pop(keys[3])
    assert people.get(keys[3]) is None


# ----------------------------------------------------------------------------- make run
def _run_demo_once(state_dir, capfd, monkeypatch) -> tuple[str, str]:
    """``python -m idp.demo`` as ``make run`` runs it (development settings, its own state
    directory), on free ports; a request reaches each server, then it stops. Returns what
    reached the terminal (file descriptors 1 and 2)."""
    import threading

    import requests

    import idp.demo.serve as serve_module
    from idp.demo.__main__ import run

    stop, shown = threading.Event(), threading.Event()
    started: dict = {}
    real_serve, real_remember = serve_module.serve_demo, serve_module.remember_first_run

    def serve_and_keep(**options):
        started["servers"] = real_serve(**options)
        return started["servers"]

    def remember_and_tell(directory):  # run() calls it right after printing the banner
        real_remember(directory)
        shown.set()

    monkeypatch.setattr(serve_module, "serve_demo", serve_and_keep)
    monkeypatch.setattr(serve_module, "remember_first_run", remember_and_tell)
    worker = threading.Thread(target=run, args=(str(state_dir),), kwargs={
        "stop": stop, "provider_port": 0, "rps": [replace(rp, port=0) for rp in DEMO_RPS]})
    worker.start()
    try:
        assert shown.wait(120), "the demo did not start"
        servers = started["servers"]
        requests.get(f"{servers.issuer}/.well-known/openid-configuration", timeout=30)
        for rp, _served in servers.rps.values():
            requests.get(f"{rp.origin}/", timeout=30)
        time.sleep(0.2)  # werkzeug logs a request after answering it
        out, err = capfd.readouterr()
    finally:
        stop.set()
        worker.join(30)
    assert not worker.is_alive()
    card = servers.provider_app.extensions["mynagate"].card
    if card.refresher is not None:
        card.refresher.stop()
    return out, err


def test_make_run_prints_one_banner_last_and_the_first_run_steps_once(tmp_path, capfd,
                                                                     monkeypatch):
    for name in [n for n in os.environ if n.startswith("IDP_")]:
        monkeypatch.delenv(name)  # the demo's own defaults, as on a fresh machine
    # A fresh process's logging: no handler yet (pytest's own would swallow the lines).
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    first, err = _run_demo_once(tmp_path, capfd, monkeypatch)
    assert err == ""
    # Nothing but the banner on the terminal: no JSON log line, no werkzeug request line,
    # and the banner (with the card's part inside it) once, ending the output.
    assert first.count("Mynagate demo is running") == 1
    assert first.rstrip().endswith("Press Ctrl-C to stop.")
    assert "{" not in first and "GET /" not in first and "Running on" not in first
    assert "sudo make bridge" in first and "パスワード password: " in first
    assert "登録コード: " in first
    log = (tmp_path / "demo.log").read_text(encoding="utf-8")
    assert '"event": "school.created"' in log and "GET /.well-known/openid-configuration" in log
    assert (tmp_path / "demo-first-run-done").exists()

    again, err = _run_demo_once(tmp_path, capfd, monkeypatch)
    assert err == "" and again.count("Mynagate demo is running") == 1
    assert again.rstrip().endswith("Press Ctrl-C to stop.")
    assert "sudo make bridge" not in again and "登録コード" not in again
    assert "pairwise subjects" not in again
    assert "shown when the demo first ran" in again  # and how to get a new password
    assert "card-bridge simulate" in again  # what one does every run is still there
