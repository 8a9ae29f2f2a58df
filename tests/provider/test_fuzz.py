"""No parameter, header or body may produce a 500 (property tests with Hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PARAM_NAMES = ["response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
               "prompt", "max_age", "login_hint", "id_token_hint", "ui_locales",
               "acr_values", "code_challenge", "code_challenge_method", "claims_locales",
               "grant_type", "code", "code_verifier", "refresh_token", "client_secret",
               "client_assertion", "client_assertion_type", "token", "token_type_hint",
               "access_token", "post_logout_redirect_uri", "txn", "mynagate_txn", "lang",
               "school", "login_id", "password", "csrf_token", "allow", "deny", "confirm"]
values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["code", "openid", "openid offline_access", "S256", "plain", "none",
                     "login consent", "-1", "99999999999999999999", "0", "\x00", "%",
                     "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "https://rp.example.test/callback",
                     "authorization_code", "refresh_token", "Basic", "ja", "en"]),
)
params = st.dictionaries(st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=12)),
                         values, max_size=10)
headers = st.dictionaries(
    st.sampled_from(["Authorization", "Content-Type", "Accept", "Origin", "Cookie",
                     "X-CSRFToken", "Accept-Language"]),
    st.one_of(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
              st.sampled_from(["Bearer ", "Bearer x", "Basic !!!", "Basic Og==",
                               # not UTF-8, no colon, bad %-escape, raw latin-1 bytes
                               "Basic //46/w==", "Basic YWJj", "Basic aWQlRkY6cw==",
                               "Basic \xff\xfe",
                               "application/json", "text/plain", "mynagate_session=x"])),
    max_size=4)
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
PATHS = ["/authorize", "/token", "/userinfo", "/revoke", "/introspect", "/logout", "/login",
         "/consent", "/login/card/challenge", "/login/card/verify", "/register", "/account",
         "/.well-known/openid-configuration", "/jwks.json"]


@pytest.mark.parametrize("path", PATHS)
@FUZZ
@given(query=params, form=params, hdrs=headers,
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
def test_no_input_gives_500(app, path, query, form, hdrs, method):
    client = app.test_client()
    clean_headers = {k: v for k, v in hdrs.items() if "\n" not in v and "\r" not in v}
    if method == "GET":
        response = client.get(path, query_string=query, headers=clean_headers)
    else:
        response = client.open(path, method=method, query_string=query, data=form,
                               headers=clean_headers)
    assert response.status_code < 500, (path, method, query, form, response.status_code)
    if response.status_code == 405:
        assert response.headers.get("Allow"), (path, method)


DEEP_JSON = st.integers(min_value=1, max_value=3000).map(
    lambda n: ("[" * n + "]" * n).encode()) | st.integers(min_value=1, max_value=3000).map(
    lambda n: ('{"a":' * n + "1" + "}" * n).encode())


@FUZZ
@given(body=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                      DEEP_JSON),
       path=st.sampled_from(["/token", "/login/card/verify", "/login/card/challenge",
                             "/register", "/revoke", "/introspect", "/userinfo"]),
       ctype=st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                              "text/plain", "multipart/form-data; boundary=x", ""]))
def test_no_body_gives_500(app, body, path, ctype):
    response = app.test_client().post(path, data=body, headers={"Content-Type": ctype})
    assert response.status_code < 500, (path, body, ctype, response.status_code)


def test_fuzzing_reaches_a_real_client(app, make_rp):
    """With a real client id the fuzzer's requests get past client lookup: make sure the
    authorization endpoint answers those with redirects or pages, never 500."""
    rp = make_rp()
    client = app.test_client()
    for prompt in ["none", "login", "consent", "select_account", "none login", ""]:
        for max_age in ["", "0", "-5", "abc", "1" * 30]:
            response = client.get("/authorize", query_string={
                "response_type": "code", "client_id": rp.client_id,
                "redirect_uri": rp.redirect_uri, "scope": "openid", "prompt": prompt,
                "max_age": max_age, "code_challenge": "x" * 43,
                "code_challenge_method": "S256"})
            assert response.status_code in (302, 303, 400), (prompt, max_age)


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("GET", "/authorize", {"query_string": {"client_id": "\x00", "response_type": "code"}}),
    ("POST", "/token", {"data": {"grant_type": "authorization_code", "code": "\x00"}}),
    ("POST", "/register", {"json": {"redirect_uris": ["https://rp.example.test/\x00"]}}),
    ("POST", "/login/card/verify", {"json": {"format": "jpki-auth:1", "bridge": "\x00"}}),
])
def test_a_nul_character_is_a_client_error_on_every_backend(app, method, path, kwargs):
    """PostgreSQL cannot store U+0000 and SQLite can: either way the request is refused as
    the client's error (400), never as an outage (503) or a crash (500)."""
    response = app.test_client().open(path, method=method, **kwargs)
    assert response.status_code == 400, (path, response.status_code)
    assert "NUL (U+0000)" in response.get_data(as_text=True)
    if path != "/authorize":
        assert response.get_json()["error"] == "invalid_request"


def test_a_body_read_as_json_whatever_its_type_is_refused_for_a_nul():
    """Four views read their body as JSON whatever its Content-Type (``force=True``): the
    input guard, which looks at what says it is JSON, does not see those; the parse does."""
    from flask import Flask, request
    from werkzeug.exceptions import BadRequest

    from idp.input_limits import NUL_REFUSAL, BoundedRequest

    app = Flask(__name__)
    app.request_class = BoundedRequest
    for body in ('{"bridge": "\\u0000"}', '{"bridge": "\x00"}'):
        with app.test_request_context("/", method="POST", data=body,
                                      content_type="text/plain"):
            with pytest.raises(BadRequest) as refused:
                request.get_json(force=True)
            assert refused.value.description == NUL_REFUSAL
    with app.test_request_context("/", method="POST", data='{"bridge": "ok"}',
                                  content_type="text/plain"):
        assert request.get_json(force=True) == {"bridge": "ok"}


def test_a_nul_in_the_sign_in_form_is_refused_and_the_login_goes_on(browser, rp, student):
    from tests.conftest import Student

    login_page = browser.follow_to_login(browser.authorize(rp)[0])
    refused = browser.password_login(login_page, Student(
        student.id, student.school_code + "\x00", student.login_id, student.password))
    assert refused.status_code == 400 and "NUL (U+0000)" in refused.get_data(as_text=True)
    # Nothing was lost: the same login page still signs the student in.
    signed_in = browser.password_login(login_page, student)
    assert signed_in.status_code == 303, signed_in.get_data(as_text=True)[:300]


def test_a_value_the_database_refuses_is_a_client_error(app):
    """A NUL reaching the database another way (inside HTTP Basic credentials) is refused
    as bad input by PostgreSQL, and is an unknown client on SQLite: a 4xx on both, nothing
    stored."""
    response = app.test_client().post(
        "/token", data={"grant_type": "authorization_code", "code": "c"},
        headers={"Authorization": _basic("\x00client", "secret")})
    assert response.status_code in (400, 401), response.status_code
    assert response.get_json()["error"] in ("invalid_request", "invalid_client")
