"""RP-initiated logout 1.0: a valid request from the app signs out at once (asks once: the
app's own button was the question); anything else gets a confirmation page; server-side
sign-out; a redirect only to a registered ``post_logout_redirect_uri``."""

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


def test_a_valid_logout_signs_out_at_once_without_asking(app, browser, rp, shared_student,
                                                          svc):
    tokens = sign_in_tokens(browser, rp, shared_student)
    old_cookie = browser.c.get_cookie(COOKIE).value
    response = browser.c.get("/logout", query_string={
        "id_token_hint": tokens.body["id_token"],
        "post_logout_redirect_uri": "https://rp.example.test/bye", "state": "after-logout"})
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


def test_a_valid_hint_without_a_return_address_lands_on_the_signed_out_page(
        browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student)
    page = browser.c.get("/logout", query_string={"id_token_hint": tokens.body["id_token"]})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="confirm"' not in html
    assert "サインアウトしました" in html
    again, _ = browser.authorize(rp, prompt="none")
    assert query_of(again.headers["Location"])["error"] == "login_required"


def test_logout_without_a_hint_asks_first_and_signs_out_only_when_confirmed(
        browser, rp, shared_student):
    """Any page can link to /logout: without the app's ID token it is only a question."""
    sign_in_tokens(browser, rp, shared_student)
    page = browser.c.get("/logout")
    assert page.status_code == 200 and 'name="confirm"' in page.get_data(as_text=True)
    still, _ = browser.authorize(rp, prompt="none")
    assert "code" in query_of(still.headers["Location"])  # the question changed nothing
    done = _confirm(browser, {})
    assert done.status_code == 200 and "サインアウトしました" in done.get_data(as_text=True)
    again, _ = browser.authorize(rp, prompt="none")
    assert query_of(again.headers["Location"])["error"] == "login_required"


def test_a_hint_naming_someone_else_asks_first(browser, make_student, rp, shared_student):
    """An old tab's ID token (another student's, on a shared PC) does not sign out whoever
    is signed in now without asking."""
    old = sign_in_tokens(browser, rp, shared_student)
    browser.c.post("/logout", data={"confirm": "1", "csrf_token": csrf_of(
        browser.c.get("/logout").get_data(as_text=True))})
    sign_in_tokens(browser, rp, make_student())
    page = browser.c.get("/logout", query_string={
        "id_token_hint": old.body["id_token"],
        "post_logout_redirect_uri": "https://rp.example.test/bye"})
    assert page.status_code == 200 and 'name="confirm"' in page.get_data(as_text=True)
    still, _ = browser.authorize(rp, prompt="none")
    assert "code" in query_of(still.headers["Location"])


def test_logout_redirects_to_registered_uri_with_state_after_confirming(
        browser, rp, shared_student):
    sign_in_tokens(browser, rp, shared_student)
    response = _confirm(browser, {"post_logout_redirect_uri": "https://rp.example.test/bye",
                                  "state": "s"})
    # No hint: the URI cannot be trusted to be this app's wish, so no redirect either.
    assert response.status_code == 200 and "Location" not in response.headers


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


def test_a_sign_out_whose_record_could_not_be_deleted_is_logged_as_an_error(
        app, browser, rp, shared_student, svc, monkeypatch):
    """Redis fails just as the session record is to be deleted: this browser is signed
    out all the same (its cookie is dropped: a shared PC's next child does not find the
    last one signed in), and the record that lives on is an error in the log."""
    from structlog.testing import capture_logs

    from idp.store.shortlived import StoreUnavailable

    tokens = sign_in_tokens(browser, rp, shared_student)
    real_delete = svc.store.delete

    def failing_delete(key: str) -> None:
        if key.startswith("sess:"):
            raise StoreUnavailable("connection lost")
        real_delete(key)

    monkeypatch.setattr(svc.store, "delete", failing_delete)
    with capture_logs() as logs:
        response = browser.c.get("/logout", query_string={
            "id_token_hint": tokens.body["id_token"]})
    assert response.status_code in (200, 303)
    failed = [entry for entry in logs if entry["event"] == "session_not_saved"]
    assert failed and failed[0]["sign_out"] is True and failed[0]["log_level"] == "error"
    assert browser.c.get_cookie(COOKIE) is None
    again, _ = browser.authorize(rp, prompt="none")
    assert query_of(again.headers["Location"])["error"] == "login_required"
