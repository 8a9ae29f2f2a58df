"""Bad input to the protocol endpoints never produces a 500 (Hypothesis; small budgets so the
suite stays fast). A valid client is used so the deeper code paths run."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import pkce_pair

TEXT = st.one_of(st.text(max_size=80), st.sampled_from(
    ["", " ", "none", "login", "consent", "none login", "S256", "plain", "code", "-1", "0",
     "99999999999", "openid", "openid offline_access", "\x00", "é", "a" * 3000]))
AUTHORIZE_PARAMS = ["response_type", "scope", "state", "nonce", "prompt", "max_age",
                    "code_challenge", "code_challenge_method", "id_token_hint", "login_hint",
                    "ui_locales", "acr_values", "redirect_uri", "response_mode", "request",
                    "claims", "display", "mynagate_txn"]
TOKEN_PARAMS = ["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token",
                "scope", "client_id", "client_secret", "client_assertion",
                "client_assertion_type", "token", "token_type_hint"]
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fuzz_rp(svc):
    from idp.clients.registry import ClientSpec, register_client

    row, secret = register_client(svc, ClientSpec(
        name="fuzz", redirect_uris=["https://fuzz.example.test/cb"],
        post_logout_redirect_uris=[]), actor="test")
    return row.client_id, secret


@FUZZ
@given(st.dictionaries(st.sampled_from(AUTHORIZE_PARAMS), TEXT, max_size=6),
       st.booleans())
def test_authorize_never_500(app, fuzz_rp, params, as_post):
    _verifier, challenge = pkce_pair()
    query = {"response_type": "code", "client_id": fuzz_rp[0],
             "redirect_uri": "https://fuzz.example.test/cb", "code_challenge": challenge,
             "code_challenge_method": "S256", "scope": "openid", **params}
    client = app.test_client()
    response = client.post("/authorize", data=query) if as_post else \
        client.get("/authorize", query_string=query)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]


@FUZZ
@given(st.dictionaries(st.sampled_from(TOKEN_PARAMS), TEXT, max_size=6),
       st.sampled_from(["/token", "/revoke", "/introspect", "/userinfo", "/logout"]),
       st.one_of(st.none(), TEXT))
def test_token_endpoints_never_500(app, fuzz_rp, form, path, authorization):
    import base64

    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization
    elif path != "/userinfo":
        raw = f"{fuzz_rp[0]}:{fuzz_rp[1]}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
    try:
        response = app.test_client().post(path, data=form, headers=headers)
    except ValueError:
        return  # the test client itself refuses header values with control characters
    assert response.status_code < 500, response.get_data(as_text=True)[:300]


@FUZZ
@given(st.dictionaries(st.sampled_from(AUTHORIZE_PARAMS), TEXT, max_size=5))
def test_authorize_signed_in_never_500(browser, rp, shared_student, params):
    from tests.oidc.conftest import sign_in_tokens

    if browser.c.get_cookie("mynagate_session") is None:
        sign_in_tokens(browser, rp, shared_student)
    response, _ = browser.authorize(rp, **params)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if response.status_code == 303 and response.headers["Location"].startswith("/"):
        follow = browser.c.get(response.headers["Location"])
        assert follow.status_code < 500
