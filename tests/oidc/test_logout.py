"""RP-initiated logout 1.0: a confirmation page, server-side sign-out, and a redirect only to a
registered ``post_logout_redirect_uri``."""

from __future__ import annotations

from tests.conftest import csrf_of, query_of
from tests.oidc.conftest import sign_in_tokens

COOKIE = "mynagate_session"


def _confirm(browser, params: dict):
    page = browser.c.get("/logout", query_string=params)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="confirm"' in html
    return browser.c.post("/logout", data={**params, "csrf_token": csrf_of(html),
                                           "confirm": "1"})


def test_logout_redirects_to_registered_uri_with_state(app, browser, rp, shared_student, svc):
    tokens = sign_in_tokens(browser, rp, shared_student)
    old_cookie = browser.c.get_cookie(COOKIE).value
    response = _confirm(browser, {"id_token_hint": tokens.body["id_token"],
                                  "post_logout_redirect_uri": "https://rp.example.test/bye",
                                  "state": "after-logout"})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("https://rp.example.test/bye")
    assert query_of(location)["state"] == "after-logout"
    # Signed out here ...
    again, _ = browser.authorize(rp, prompt="none")
    assert query_of(again.headers["Location"])["error"] == "login_required"
    # ... and on the server: a copy of the old cookie is worthless.
    thief = app.test_client()
    thief.set_cookie(COOKIE, old_cookie)
    stolen, _ = type(browser)(thief).authorize(rp, prompt="none")
    assert query_of(stolen.headers["Location"])["error"] == "login_required"


def test_logout_never_redirects_to_an_unregistered_uri(browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student)
    response = _confirm(browser, {"id_token_hint": tokens.body["id_token"],
                                  "post_logout_redirect_uri": "https://attacker.example/bye"})
    assert response.status_code == 200
    assert "Location" not in response.headers
    again, _ = browser.authorize(rp, prompt="none")
    assert query_of(again.headers["Location"])["error"] == "login_required"


def test_logout_with_another_clients_uri_is_not_redirected(browser, make_rp, shared_student):
    rp = make_rp()
    other = make_rp(host="other.example.test")
    tokens = sign_in_tokens(browser, rp, shared_student)
    response = _confirm(browser, {"id_token_hint": tokens.body["id_token"],
                                  "post_logout_redirect_uri": "https://other.example.test/bye"})
    # Registered, but for another client than the one the ID token names: no redirect.
    assert other.redirect_uri.startswith("https://other.example.test/")
    assert "Location" not in response.headers


def test_logout_with_a_forged_id_token_hint_is_an_error_page(browser, rp, shared_student):
    sign_in_tokens(browser, rp, shared_student)
    response = browser.c.get("/logout", query_string={
        "id_token_hint": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "post_logout_redirect_uri": "https://rp.example.test/bye"})
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_logout_post_without_csrf_is_refused(browser, rp, shared_student):
    sign_in_tokens(browser, rp, shared_student)
    response = browser.c.post("/logout", data={"confirm": "1"})
    assert response.status_code == 400
    assert "Location" not in response.headers
    again, _ = browser.authorize(rp, prompt="none")
    assert "code" in query_of(again.headers["Location"])  # still signed in
