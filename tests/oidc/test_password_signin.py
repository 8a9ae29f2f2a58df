"""Password sign-in inside the authorization flow: one message for every bad credential,
progressive delays (never a long lock-out), fresh session ids, cookie flags, CSRF, 303s and
the security headers of every page."""

from __future__ import annotations

import re
import time

from tests.conftest import csrf_of
from tests.oidc.conftest import sign_in_tokens

COOKIE = "mynagate_session"


def _login_page(browser, rp):
    response, _ = browser.authorize(rp)
    return browser.follow_to_login(response)


def _post_login(browser, page, school: str, login_id: str, password: str):
    html = page.get_data(as_text=True)
    txn = re.search(r'name="txn" type="hidden" value="([^"]*)"', html)
    return browser.c.post("/login", data={"csrf_token": csrf_of(html), "school": school,
                                          "login_id": login_id, "password": password,
                                          "txn": txn.group(1) if txn else ""})


def _alert(response) -> str:
    match = re.search(r'<p class="error" role="alert">([^<]*)</p>', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:500]
    return match.group(1)


def test_same_message_for_unknown_login_and_wrong_password(new_browser, rp, shared_student,
                                                           monkeypatch):
    import idp.signin.password as views

    checked: list[str | None] = []
    real_verify = views.verify_password

    def spy(stored_hash, password):
        checked.append(stored_hash)
        return real_verify(stored_hash, password)

    monkeypatch.setattr(views, "verify_password", spy)
    browser = new_browser()
    page = _login_page(browser, rp)
    wrong = _post_login(browser, page, shared_student.school_code, shared_student.login_id,
                        "not the password at all")
    unknown = _post_login(browser, page, shared_student.school_code, "no-such-student",
                          "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert _alert(wrong) == _alert(unknown)
    # An unknown login still costs one Argon2 verification (against a dummy hash).
    assert len(checked) == 2 and checked[1] is None


def test_progressive_delay_not_a_lockout(new_browser, rp, make_student, svc, monkeypatch):
    student = make_student()
    browser = new_browser()
    page = _login_page(browser, rp)
    statuses = [_post_login(browser, page, student.school_code, student.login_id,
                            f"wrong password {i}").status_code for i in range(5)]
    assert statuses == [401] * 5
    # The sixth attempt waits, even with the right password, and says for how long.
    blocked = _post_login(browser, page, student.school_code, student.login_id,
                          student.password)
    assert blocked.status_code == 429
    seconds = int(re.search(r"(\d+)秒", _alert(blocked)).group(1))
    assert 1 <= seconds <= 300
    # The delay is short and capped: after it, the right password works.
    from idp.signin.throttle import ACCOUNT_POLICY, delay_for

    assert delay_for(10_000, ACCOUNT_POLICY) <= 300
    later = time.time() + seconds + 1
    monkeypatch.setattr(svc.throttle, "_clock", lambda: later)
    ok = _post_login(browser, page, student.school_code, student.login_id, student.password)
    assert ok.status_code == 303, ok.get_data(as_text=True)[:400]


def test_delay_for_one_child_does_not_slow_another(new_browser, rp, make_student):
    victim, classmate = make_student(), make_student()
    attacker = new_browser()
    page = _login_page(attacker, rp)
    for i in range(6):
        _post_login(attacker, page, victim.school_code, victim.login_id, f"guess {i}")
    browser = new_browser()
    assert sign_in_tokens(browser, rp, classmate).claims["sub"]


def test_per_ip_throttle(app, new_browser, rp, shared_student, make_student):
    from idp.signin.throttle import IP_POLICY

    fresh = make_student()

    browser = new_browser()
    page = _login_page(browser, rp)
    # Many guesses at many (unknown) accounts from one address.
    for i in range(IP_POLICY.free_failures):
        response = _post_login(browser, page, shared_student.school_code, f"guess-{i}", "pw-x")
        assert response.status_code == 401
    # Unknown-account guessing from that address is slowed now ...
    blocked = _post_login(browser, page, shared_student.school_code, "guess-more", "pw-x")
    assert blocked.status_code == 429
    # ... but a correct password for an account with no failures of its own is not refused
    # (issue 8: a whole school shares one address). The same student elsewhere: not slowed.
    ok = _post_login(browser, page, fresh.school_code, fresh.login_id, fresh.password)
    assert ok.status_code == 303
    assert sign_in_tokens(new_browser(), rp, shared_student).claims["sub"]


def test_session_id_changes_at_login_and_cookie_flags(new_browser, rp, shared_student):
    browser = new_browser()
    page = _login_page(browser, rp)
    before = browser.c.get_cookie(COOKIE)
    assert before is not None  # the login transaction is bound to this browser
    response = _post_login(browser, page, shared_student.school_code, shared_student.login_id,
                           shared_student.password)
    assert response.status_code == 303
    after = browser.c.get_cookie(COOKIE)
    assert after.value != before.value
    set_cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE)]
    assert set_cookie
    flags = set_cookie[-1].lower()
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "domain=" not in flags
    # The old id does not carry the signed-in session.
    from tests.conftest import Browser

    fixation = Browser(browser.c.application.test_client())
    fixation.c.set_cookie(COOKIE, before.value)
    attempt, _ = fixation.authorize(rp, prompt="none")
    assert "error=login_required" in attempt.headers["Location"]


def test_login_without_csrf_token_is_a_400_page(new_browser, rp, shared_student):
    browser = new_browser()
    _login_page(browser, rp)
    response = browser.c.post("/login", data={"school": shared_student.school_code,
                                              "login_id": shared_student.login_id,
                                              "password": shared_student.password})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "Location" not in response.headers


def test_consent_without_csrf_token_is_a_400_page(new_browser, make_rp, shared_student):
    browser = new_browser()
    rp = make_rp()
    response, _ = browser.authorize(rp)
    after_login = browser.password_login(browser.follow_to_login(response), shared_student)
    consent_url = browser.c.get(after_login.headers["Location"]).headers["Location"]
    txn = re.search(r"txn=([^&]+)", consent_url).group(1)
    refused = browser.c.post("/consent", data={"txn": txn, "allow": "1"})
    assert refused.status_code == 400


def test_303_after_every_successful_post(new_browser, make_rp, shared_student):
    browser = new_browser()
    rp = make_rp()
    response, _ = browser.authorize(rp)
    login = browser.password_login(browser.follow_to_login(response), shared_student)
    assert login.status_code == 303
    resumed = browser.c.get(login.headers["Location"])
    consent = browser.consent(resumed)
    assert consent.status_code == 303


def test_inactive_account_gets_the_same_message(new_browser, rp, make_student, svc):
    from idp.store.models import Account

    student = make_student()
    with svc.db.session() as db:
        db.get(Account, student.id).active = False
    browser = new_browser()
    page = _login_page(browser, rp)
    refused = _post_login(browser, page, student.school_code, student.login_id, student.password)
    wrong = _post_login(browser, page, student.school_code, "nobody-here", "whatever-pw")
    assert refused.status_code == 401
    assert _alert(refused) == _alert(wrong)


def test_empty_fields_are_a_friendly_400(new_browser, rp):
    browser = new_browser()
    page = _login_page(browser, rp)
    response = _post_login(browser, page, "", "", "")
    assert response.status_code == 400
    assert 'role="alert"' in response.get_data(as_text=True)


def test_deactivated_account_loses_its_session(new_browser, rp, make_student, svc):
    from idp.store.models import Account

    student = make_student()
    browser = new_browser()
    sign_in_tokens(browser, rp, student)
    with svc.db.session() as db:
        db.get(Account, student.id).active = False
    response, _ = browser.authorize(rp, prompt="none")
    assert "error=login_required" in response.headers["Location"]


# ----------------------------------------------------------------------------- headers
def _check_security_headers(response) -> None:
    csp = response.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert re.search(r"script-src 'self'(;|$)", csp)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_security_headers_on_pages_and_apis(new_browser, rp, client):
    browser = new_browser()
    page = _login_page(browser, rp)
    _check_security_headers(page)
    assert "no-store" in page.headers["Cache-Control"]
    assert "<script>" not in page.get_data(as_text=True)  # no inline script to allow
    error_page = client.get("/authorize", query_string={"client_id": "nope"})
    _check_security_headers(error_page)
    _check_security_headers(client.post("/token", data={}))
    _check_security_headers(client.get("/.well-known/openid-configuration"))


def test_no_hsts_over_http_issuer(client, svc):
    assert not svc.settings.issuer_is_https
    assert "Strict-Transport-Security" not in client.get("/").headers


