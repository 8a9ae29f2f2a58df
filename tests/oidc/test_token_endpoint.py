"""The token endpoint: single-use short-lived codes, client authentication, errors as JSON
with the right status and no caching (RFC 6749 §5, RFC 9700 §4.2, OIDC Core §3.1.3)."""

from __future__ import annotations

import threading
import time

from tests.conftest import redeem, token_request
from tests.oidc.conftest import basic_auth, keys_passed_to, userinfo


def _code_key(code: str) -> str:
    from idp.oidc.tokens import token_hash

    return "code:" + token_hash(code)


def test_code_lives_at_most_60_seconds_in_the_store(browser, rp, shared_student, svc):
    query, _ = browser.sign_in_and_authorize(rp, shared_student)
    ttl = svc.store.ttl(_code_key(query["code"]))
    assert 0 < ttl <= 60
    assert svc.settings.code_lifetime <= 60


def test_expired_code_is_invalid_grant(client, browser, rp, shared_student, svc, monkeypatch):
    # The real store expires the code (Redis or in-process); one second instead of sixty.
    monkeypatch.setattr(svc.settings, "code_lifetime", 1)
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    time.sleep(1.2)
    response = redeem(client, rp, query["code"], verifier)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_concurrent_redemption_leaves_no_usable_tokens(app, client, browser, rp,
                                                       shared_student):
    """The same code sent twice at once by its client is a replay (RFC 6749 §4.1.2): at
    most one answer carries tokens, the other is invalid_grant, and whatever the code
    issued is revoked, whichever of the two got to its write first."""
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    barrier = threading.Barrier(2)
    answers: list = []

    def race() -> None:
        c = app.test_client()
        barrier.wait()
        answers.append(redeem(c, rp, query["code"], verifier))

    threads = [threading.Thread(target=race) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(a.status_code for a in answers) in ([200, 400], [400, 400])
    assert "invalid_grant" in [a.get_json().get("error") for a in answers]
    for answer in answers:
        if answer.status_code == 200:
            assert userinfo(client, answer.get_json()["access_token"]).status_code == 401


def test_token_responses_are_not_cached(client, browser, rp, shared_student):
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    ok = redeem(client, rp, query["code"], verifier)
    assert ok.status_code == 200
    assert ok.headers["Cache-Control"] == "no-store"
    assert ok.mimetype == "application/json"
    failed = redeem(client, rp, query["code"], verifier)
    assert failed.headers["Cache-Control"] == "no-store"


def test_invalid_client_basic_is_401_with_www_authenticate(client, rp):
    response = client.post("/token", data={"grant_type": "authorization_code", "code": "x",
                                           "redirect_uri": rp.redirect_uri,
                                           "code_verifier": "v" * 43},
                           headers=basic_auth(rp.client_id, "wrong-secret"))
    assert response.status_code == 401
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.headers["Cache-Control"] == "no-store"


def test_invalid_client_post_is_401_json(client, make_rp):
    rp = make_rp(auth_method="client_secret_post")
    response = client.post("/token", data={"grant_type": "authorization_code", "code": "x",
                                           "client_id": rp.client_id, "client_secret": "nope",
                                           "redirect_uri": rp.redirect_uri})
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == "invalid_client"


def test_unknown_client_at_token_endpoint(client):
    response = client.post("/token", data={"grant_type": "authorization_code", "code": "x"},
                           headers=basic_auth("nobody", "nothing"))
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_no_client_authentication_is_invalid_client(client, rp):
    response = client.post("/token", data={"grant_type": "authorization_code", "code": "x",
                                           "client_id": rp.client_id})
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == "invalid_client"


def test_unsupported_grant_type(client, rp):
    response = token_request(client, rp, {"grant_type": "password", "username": "a",
                                          "password": "b"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"
    response = token_request(client, rp, {"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.get_json()["error"] in ("unsupported_grant_type", "unauthorized_client")


def test_missing_code_is_invalid_request(client, rp):
    response = token_request(client, rp, {"grant_type": "authorization_code",
                                          "redirect_uri": rp.redirect_uri})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_unknown_code_is_invalid_grant(client, rp):
    response = redeem(client, rp, "made-up-code", "v" * 43)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_code_of_another_client_is_invalid_grant(client, browser, make_rp, shared_student):
    rp = make_rp()
    other = make_rp(host="thief.example.test")
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    stolen = token_request(client, other, {"grant_type": "authorization_code",
                                           "code": query["code"], "code_verifier": verifier,
                                           "redirect_uri": rp.redirect_uri})
    assert stolen.status_code == 400
    assert stolen.get_json()["error"] == "invalid_grant"


def test_public_client_code_flow(client, browser, make_rp, shared_student):
    rp = make_rp(auth_method="none")
    assert rp.client_secret is None
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    response = redeem(client, rp, query["code"], verifier)
    assert response.status_code == 200, response.get_json()
    assert userinfo(client, response.get_json()["access_token"]).status_code == 200


def test_token_endpoint_get_is_refused(client):
    response = client.get("/token")
    assert response.status_code == 405


def test_back_channel_calls_never_touch_the_browser_session(client, browser, rp,
                                                            shared_student, svc,
                                                            monkeypatch):
    """The token, UserInfo, revocation and metadata endpoints answer from the client's own
    credentials: a browser's session cookie sent along (a same-site fetch from a signed-in
    tab) is neither read nor refreshed, so it grants nothing and costs no store read."""
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    read = keys_passed_to(monkeypatch, svc.store, "get")
    tokens = redeem(client, rp, query["code"], verifier)  # the signed-in browser's cookies
    assert tokens.status_code == 200, tokens.get_json()
    answers = [tokens, userinfo(client, tokens.get_json()["access_token"]),
               client.get("/jwks.json"), client.get("/.well-known/openid-configuration")]
    for answer in answers:
        assert answer.status_code == 200
        assert "Set-Cookie" not in answer.headers
    assert not [key for key in read if key.startswith("sess:")]
    # The same browser's own pages still see its session.
    assert client.get("/account/").status_code == 200
    assert [key for key in read if key.startswith("sess:")]


def test_a_language_asked_of_a_sessionless_path_is_not_a_server_error(client):
    """The back-channel and probe paths have no session to remember a language in: asked
    for one (``?lang=en``) on a method they refuse, their error page is still in it."""
    for path in ("/jwks.json", "/.well-known/openid-configuration", "/healthz"):
        answer = client.post(path + "?lang=en")
        assert answer.status_code == 405, (path, answer.status_code)
        assert 'lang="en"' in answer.get_data(as_text=True)
        assert "Set-Cookie" not in answer.headers
    answer = client.get("/token?lang=en")
    assert answer.status_code == 405 and answer.is_json
