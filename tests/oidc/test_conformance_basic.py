"""One test per module of the OpenID conformance suite's Basic and Config OP plans, through the
Flask test client. Each test states what the suite's module checks."""

from __future__ import annotations

import re
import time

from tests.conftest import ROOT, need, pkce_pair, query_of, redeem, token_request
from tests.oidc.conftest import basic_auth, refresh, sign_in_tokens, userinfo, verify_id_token

ID_TOKEN_REQUIRED = {"iss", "sub", "aud", "exp", "iat", "auth_time", "acr", "amr", "sid"}


def _authorize_direct(client, rp, **params):
    verifier, challenge = pkce_pair()
    query = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
             "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"}
    query.update(params)
    return client.get("/authorize", query_string={k: v for k, v in query.items()
                                                  if v is not None}), verifier


def test_oidcc_server(client, browser, rp, shared_student, svc):
    tokens = sign_in_tokens(browser, rp, shared_student, state="s-1", nonce="n-1")
    assert tokens.query["iss"] == svc.settings.issuer
    assert tokens.query["state"] == "s-1"
    assert set(tokens.claims) >= ID_TOKEN_REQUIRED
    assert tokens.claims["iss"] == svc.settings.issuer
    assert tokens.claims["nonce"] == "n-1"
    assert tokens.claims["exp"] > time.time() > tokens.claims["iat"] - 5
    assert tokens.body["token_type"].lower() == "bearer"
    assert isinstance(tokens.body["expires_in"], int)
    info = userinfo(client, tokens.body["access_token"])
    assert info.status_code == 200
    assert info.get_json()["sub"] == tokens.claims["sub"]


def test_oidcc_client_secret_post(client, browser, make_rp, shared_student):
    rp = make_rp(auth_method="client_secret_post")
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    # Basic is refused for a client registered for client_secret_post.
    wrong = client.post("/token", data={"grant_type": "authorization_code", "code": query["code"],
                                        "redirect_uri": rp.redirect_uri,
                                        "code_verifier": verifier},
                        headers=basic_auth(rp.client_id, rp.client_secret))
    assert wrong.status_code == 401
    assert wrong.get_json()["error"] == "invalid_client"
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    response = redeem(client, rp, query["code"], verifier)
    assert response.status_code == 200, response.get_json()
    verify_id_token(client, rp, response.get_json()["id_token"])


def test_oidcc_response_type_missing(client, rp, svc):
    response, _ = _authorize_direct(client, rp, response_type=None, state="st")
    assert response.status_code in (302, 303)
    query = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith(rp.redirect_uri)
    assert query["error"] in ("invalid_request", "unsupported_response_type")
    assert query["iss"] == svc.settings.issuer
    assert query["state"] == "st"


def test_oidcc_userinfo_get(client, browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student)
    info = userinfo(client, tokens.body["access_token"], "get")
    assert info.status_code == 200
    assert info.mimetype == "application/json"
    assert info.get_json()["sub"] == tokens.claims["sub"]


def test_oidcc_userinfo_post_header(client, browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student)
    info = userinfo(client, tokens.body["access_token"], "post-header")
    assert info.status_code == 200
    assert info.get_json()["sub"] == tokens.claims["sub"]


def test_oidcc_userinfo_post_body(client, browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student)
    info = userinfo(client, tokens.body["access_token"], "post-body")
    assert info.status_code == 200
    assert info.get_json()["sub"] == tokens.claims["sub"]


def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student, nonce=None)
    assert "nonce" not in tokens.claims
    assert "state" not in tokens.query


def test_oidcc_prompt_login(browser, rp, shared_student, travel):
    first = sign_in_tokens(browser, rp, shared_student)
    travel(5)
    response, _ = browser.authorize(rp, prompt="login")
    # Signed in already, yet the login page is shown again.
    login_page = browser.follow_to_login(response)
    assert login_page.status_code == 200
    second = sign_in_tokens(browser, rp, shared_student, prompt="login")
    assert second.claims["auth_time"] > first.claims["auth_time"]
    assert second.claims["sub"] == first.claims["sub"]


def test_oidcc_prompt_none_not_logged_in(client, rp, svc):
    long_state = "s" * 1000 + "-é&=?"
    response, _ = _authorize_direct(client, rp, prompt="none", state=long_state)
    assert response.status_code in (302, 303)
    location = response.headers["Location"]
    assert location.startswith(rp.redirect_uri)
    query = query_of(location)
    assert query["error"] in ("login_required", "interaction_required")
    assert query["state"] == long_state
    assert query["iss"] == svc.settings.issuer
    assert "code" not in query


def test_oidcc_prompt_none_logged_in(browser, rp, shared_student, svc):
    first = sign_in_tokens(browser, rp, shared_student)
    response, verifier = browser.authorize(rp, prompt="none", state="again")
    assert response.status_code in (302, 303)
    query = query_of(response.headers["Location"])
    assert "error" not in query, query
    assert query["state"] == "again"
    assert query["iss"] == svc.settings.issuer
    second = redeem(browser.c, rp, query["code"], verifier)
    assert second.status_code == 200
    claims = verify_id_token(browser.c, rp, second.get_json()["id_token"])
    assert claims["sub"] == first.claims["sub"]
    assert claims["auth_time"] == first.claims["auth_time"]


def test_oidcc_id_token_hint(browser, rp, shared_student):
    first = sign_in_tokens(browser, rp, shared_student)
    response, verifier = browser.authorize(rp, prompt="none",
                                           id_token_hint=first.body["id_token"])
    query = query_of(response.headers["Location"])
    assert "code" in query, query
    second = redeem(browser.c, rp, query["code"], verifier)
    claims = verify_id_token(browser.c, rp, second.get_json()["id_token"])
    assert claims["sub"] == first.claims["sub"]


def test_oidcc_max_age_1(browser, rp, shared_student, travel):
    first = sign_in_tokens(browser, rp, shared_student)
    travel(3)
    response, _ = browser.authorize(rp, max_age="1")
    # The session is older than a second: a new sign-in is required.
    assert browser.follow_to_login(response).status_code == 200
    second = sign_in_tokens(browser, rp, shared_student, max_age="1")
    assert "auth_time" in second.claims
    assert second.claims["auth_time"] > first.claims["auth_time"]


def test_oidcc_max_age_10000(browser, rp, shared_student, travel):
    first = sign_in_tokens(browser, rp, shared_student)
    travel(3)
    response, verifier = browser.authorize(rp, max_age="10000")
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith(rp.redirect_uri)  # no new sign-in
    query = query_of(response.headers["Location"])
    second = redeem(browser.c, rp, query["code"], verifier)
    claims = verify_id_token(browser.c, rp, second.get_json()["id_token"])
    assert claims["auth_time"] == first.claims["auth_time"]


def test_oidcc_ensure_request_with_unknown_parameter_succeeds(browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student, extra_param="foo",
                            another_unknown="bar baz")
    assert tokens.claims["sub"]


def test_oidcc_login_hint(browser, rp, shared_student):
    response, _ = browser.authorize(rp, login_hint=shared_student.login_id)
    page = browser.follow_to_login(response)
    html = page.get_data(as_text=True)
    assert re.search(r'name="login_id"[^>]*value="' + re.escape(shared_student.login_id), html) \
        or re.search(r'value="' + re.escape(shared_student.login_id) + r'"[^>]*name="login_id"',
                     html)
    tokens = sign_in_tokens(browser, rp, shared_student, login_hint=shared_student.login_id)
    assert tokens.claims["sub"]


def test_oidcc_ui_locales(new_browser, rp, shared_student):
    browser = new_browser()
    response, _ = browser.authorize(rp, ui_locales="en")
    page = browser.follow_to_login(response)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="en">' in html
    # And the sign-in still completes.
    browser_ja = new_browser()
    page_ja = browser_ja.follow_to_login(browser_ja.authorize(rp)[0])
    assert '<html lang="ja">' in page_ja.get_data(as_text=True)
    assert sign_in_tokens(browser, rp, shared_student, ui_locales="en").claims["sub"]


def test_oidcc_ui_locales_english_text(new_browser, rp):
    """The page itself switches language (not just the lang attribute)."""
    catalog = ROOT / "idp" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
    need(catalog.exists(), "the English catalog idp/translations/en is not written yet")
    browser = new_browser()
    page = browser.follow_to_login(browser.authorize(rp, ui_locales="en")[0])
    html = page.get_data(as_text=True)
    body = html.split("<main", 1)[1]
    assert "サインイン" not in body, "the login page is still in Japanese with ui_locales=en"
    assert re.search(r"[Ss]ign in", body)


def test_oidcc_claims_locales(browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student, claims_locales="en ja",
                            scope="openid profile")
    info = userinfo(browser.c, tokens.body["access_token"])
    assert info.status_code == 200
    assert info.get_json()["name"] == "山田 花子"


def test_oidcc_ensure_request_with_acr_values_succeeds(browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student, acr_values="1 2 urn:unknown")
    assert tokens.claims["acr"]
    tokens = sign_in_tokens(browser, rp, shared_student,
                            acr_values="urn:mynagate:acr:password")
    assert tokens.claims["acr"] == "urn:mynagate:acr:password"


def test_oidcc_codereuse(client, browser, rp, shared_student):
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    first = redeem(client, rp, query["code"], verifier)
    assert first.status_code == 200
    access = first.get_json()["access_token"]
    assert userinfo(client, access).status_code == 200
    again = redeem(client, rp, query["code"], verifier)
    assert again.status_code == 400
    assert again.mimetype == "application/json"
    assert again.get_json()["error"] == "invalid_grant"
    assert userinfo(client, access).status_code == 401


def test_oidcc_codereuse_30seconds(client, browser, rp, shared_student, travel):
    query, verifier = browser.sign_in_and_authorize(rp, shared_student,
                                                    scope="openid offline_access")
    first = redeem(client, rp, query["code"], verifier)
    assert first.status_code == 200
    access = first.get_json()["access_token"]
    travel(30)
    assert userinfo(client, access).status_code == 200  # still valid 30 s later
    again = redeem(client, rp, query["code"], verifier)
    assert again.status_code == 400
    assert again.get_json()["error"] == "invalid_grant"
    assert userinfo(client, access).status_code == 401
    # Every token issued from the code goes, the refresh token included.
    assert refresh(client, rp, first.get_json()["refresh_token"]).status_code == 400


def test_oidcc_ensure_registered_redirect_uri(client, rp):
    response, _ = _authorize_direct(client, rp, redirect_uri="https://attacker.example/cb",
                                    state="x")
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"
    assert 'href="https://attacker.example' not in response.get_data(as_text=True)
    # A prefix or a variation of a registered URI is not a match either.
    for variant in (rp.redirect_uri + "/x", rp.redirect_uri + "?a=1",
                    rp.redirect_uri.upper()):
        response, _ = _authorize_direct(client, rp, redirect_uri=variant)
        assert response.status_code == 400 and "Location" not in response.headers


def test_oidcc_ensure_post_request_succeeds(browser, rp, shared_student, svc):
    sign_in_tokens(browser, rp, shared_student)  # signed in and consented
    verifier, challenge = pkce_pair()
    response = browser.c.post("/authorize", data={
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
        "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256",
        "state": "posted", "nonce": "pn"})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    query = query_of(response.headers["Location"])
    assert query["state"] == "posted" and query["iss"] == svc.settings.issuer
    token = redeem(browser.c, rp, query["code"], verifier)
    assert token.status_code == 200
    assert verify_id_token(browser.c, rp, token.get_json()["id_token"])["nonce"] == "pn"


def test_oidcc_ensure_post_request_succeeds_through_login(new_browser, rp, shared_student):
    """A POSTed authorization request survives the sign-in and consent pages."""
    browser = new_browser()
    verifier, challenge = pkce_pair()
    response = browser.c.post("/authorize", data={
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
        "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256",
        "state": "p2"})
    while response.status_code == 303 and not response.headers["Location"].startswith("https"):
        location = response.headers["Location"]
        if location.startswith("/login"):
            response = browser.password_login(browser.c.get(location), shared_student)
        elif location.startswith("/consent"):
            response = browser.consent(response)
        else:
            response = browser.c.get(location)
    query = query_of(response.headers["Location"])
    assert query["state"] == "p2"
    assert redeem(browser.c, rp, query["code"], verifier).status_code == 200


def test_oidcc_refresh_token(client, browser, make_rp, shared_student, svc):
    rp = make_rp()
    other = make_rp(host="other.example.test")
    tokens = sign_in_tokens(browser, rp, shared_student, scope="openid offline_access")
    assert "refresh_token" in tokens.body
    old_refresh = tokens.body["refresh_token"]

    # Another client cannot use this refresh token.
    stolen = refresh(client, other, old_refresh)
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"

    renewed = refresh(client, rp, old_refresh)
    assert renewed.status_code == 200, renewed.get_json()
    assert renewed.headers["Cache-Control"] == "no-store"
    body = renewed.get_json()
    claims = verify_id_token(client, rp, body["id_token"])
    for name in ("iss", "sub", "aud", "auth_time", "acr", "amr", "sid", "azp"):
        assert claims[name] == tokens.claims[name], name
    assert body["refresh_token"] != old_refresh  # rotated
    assert userinfo(client, body["access_token"]).status_code == 200

    # The rotated-out token comes back: the whole family is revoked.
    reuse = refresh(client, rp, old_refresh)
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    assert refresh(client, rp, body["refresh_token"]).status_code == 400
    assert userinfo(client, body["access_token"]).status_code == 401


def test_oidcc_refresh_token_needs_offline_access(browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student, scope="openid")
    assert "refresh_token" not in tokens.body


def test_oidcc_refresh_token_not_for_client_without_grant(browser, make_rp, shared_student):
    rp = make_rp(grant_types=["authorization_code"])
    tokens = sign_in_tokens(browser, rp, shared_student, scope="openid offline_access")
    assert "refresh_token" not in tokens.body


def test_oidcc_ensure_request_with_valid_pkce_succeeds(client, browser, rp, shared_student):
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    response = redeem(client, rp, query["code"], verifier)
    assert response.status_code == 200


def test_oidcc_discovery_endpoint_verification(client, svc):
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    meta = response.get_json()
    issuer = svc.settings.issuer
    assert meta["issuer"] == issuer and not issuer.endswith("/")
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint",
                     "jwks_uri", "revocation_endpoint", "introspection_endpoint",
                     "end_session_endpoint"):
        assert meta[endpoint].startswith(issuer + "/"), endpoint
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["subject_types_supported"] == ["pairwise"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert "openid" in meta["scopes_supported"]
    assert set(meta["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt",
        "none"}
    assert meta["acr_values_supported"]
    assert {"sub", "iss", "auth_time", "acr", "amr"} <= set(meta["claims_supported"])
    assert "none" in meta["prompt_values_supported"]
    same = client.get("/.well-known/oauth-authorization-server").get_json()
    assert same == meta
    jwks = client.get(meta["jwks_uri"].removeprefix(issuer))
    assert jwks.status_code == 200
    keys = jwks.get_json()["keys"]
    assert keys and all(k.get("kid") for k in keys)
    assert all("d" not in k for k in keys)  # public keys only


def test_token_endpoint_refresh_with_public_client(client, browser, make_rp, shared_student):
    rp = make_rp(auth_method="none")
    tokens = sign_in_tokens(browser, rp, shared_student, scope="openid offline_access")
    renewed = token_request(client, rp, {"grant_type": "refresh_token",
                                         "refresh_token": tokens.body["refresh_token"]})
    assert renewed.status_code == 200, renewed.get_json()
