"""The first password on the teacher's slip is changed at the first password sign-in, and the
page cannot be skipped; the card sign-in skips it."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_of, query_of

NEW = "my own long password 42"


def _slip_student(make_student, svc):
    """A student as the roster import makes one: a first password to be changed."""
    from idp.store.models import Account

    student = make_student()
    with svc.db.session() as db:
        db.get(Account, student.id).must_change_password = True
    return student


def _signed_in_with_slip(browser, rp, student):
    response, verifier = browser.authorize(rp, prompt="consent")
    signed_in = browser.password_login(browser.follow_to_login(response), student)
    return signed_in, verifier


def test_the_slips_password_leads_to_the_change_page_then_to_the_app(browser, rp,
                                                                     make_student, svc):
    from idp.signin.passwords import verify_password
    from idp.store.models import Account

    student = _slip_student(make_student, svc)
    signed_in, _verifier = _signed_in_with_slip(browser, rp, student)
    resumed = browser.c.get(signed_in.headers["Location"])  # back to /authorize ...
    assert resumed.status_code == 303
    assert resumed.headers["Location"].endswith("/account/first-password")  # ... stopped
    page = browser.c.get("/account/first-password")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="first-password-form"' in html
    assert 'name="current"' not in html  # short: the sign-in just proved the slip's password
    done = browser.c.post("/account/first-password", data={
        "csrf_token": csrf_of(html), "new": NEW, "repeat": NEW})
    assert done.status_code == 303 and done.headers["Location"].startswith("/authorize")
    onward = browser.consent(browser.c.get(done.headers["Location"]))
    while onward.headers["Location"].startswith("/authorize"):
        onward = browser.c.get(onward.headers["Location"])
    assert onward.headers["Location"].startswith(rp.redirect_uri)
    assert "code" in query_of(onward.headers["Location"])
    with svc.db.session() as db:
        account = db.get(Account, student.id)
        assert account.must_change_password is False
        assert verify_password(account.password_hash, NEW)
    assert browser.c.get("/account/").status_code == 200  # free to go now


def test_no_url_skips_the_change_page(browser, rp, make_student, svc):
    student = _slip_student(make_student, svc)
    _signed_in_with_slip(browser, rp, student)
    for path in ("/account/", "/account/password", "/consent",
                 f"/authorize?client_id={rp.client_id}&response_type=code"
                 f"&redirect_uri={rp.redirect_uri}&scope=openid"):
        response = browser.c.get(path)
        assert response.status_code == 303, path
        assert response.headers["Location"].endswith("/account/first-password"), path
    direct, _ = browser.authorize(rp, prompt="none")
    assert direct.headers["Location"].endswith("/account/first-password")
    assert "code=" not in direct.headers["Location"]


def test_the_slips_password_again_or_a_mismatch_is_refused(browser, rp, make_student, svc):
    student = _slip_student(make_student, svc)
    _signed_in_with_slip(browser, rp, student)
    html = browser.c.get("/account/first-password").get_data(as_text=True)
    same = browser.c.post("/account/first-password", data={
        "csrf_token": csrf_of(html), "new": student.password, "repeat": student.password})
    assert same.status_code == 400 and "先生の紙" in same.get_data(as_text=True)
    mismatch = browser.c.post("/account/first-password", data={
        "csrf_token": csrf_of(html), "new": NEW, "repeat": NEW + "x"})
    assert mismatch.status_code == 400
    no_csrf = browser.c.post("/account/first-password", data={"new": NEW, "repeat": NEW})
    assert no_csrf.status_code == 400
    assert browser.c.get("/account/").status_code == 303  # still must change


def test_without_a_first_password_the_page_sends_to_my_page(browser, rp, make_student):
    student = make_student()
    browser.sign_in_and_authorize(rp, student)
    page = browser.c.get("/account/first-password")
    assert page.status_code == 303 and page.headers["Location"].endswith("/account/")


def test_the_card_sign_in_skips_the_change(app, make_student, svc):
    from idp.account.first_password_views import must_change_now
    from idp.signin.context import ACR_CARD, ACR_PASSWORD, AMR_CARD, AMR_PASSWORD
    from idp.signin.current import sign_in
    from idp.store.models import Account

    student = _slip_student(make_student, svc)
    with svc.db.session() as db:
        account = db.get(Account, student.id)
        db.expunge(account)
    with app.test_request_context("/"):
        sign_in(account, acr=ACR_CARD, amr=AMR_CARD)
        assert must_change_now() is False
        sign_in(account, acr=ACR_PASSWORD, amr=AMR_PASSWORD)
        assert must_change_now() is True


def test_day_and_time_as_a_child_reads_it():
    from datetime import datetime

    from idp.japan_time import japan_day_and_time

    moment = datetime(2025, 11, 30, 23, 43)  # naive UTC: Monday 1 December in Japan
    assert japan_day_and_time(moment) == "12月1日（月） 8:43"
    assert japan_day_and_time(moment, "en") == "Mon 1 Dec 8:43"
    assert japan_day_and_time(None) == ""


def test_an_app_agreed_to_before_gets_no_code_before_the_new_password(browser, new_rp_consent,
                                                                       make_student, svc):
    """The sign-in page answers an agreed app at once (idp.oidc.views.continue_authorization),
    but never for a first password: the change page comes first, and no code is issued."""
    student = _slip_student(make_student, svc)
    rp = new_rp_consent(student)
    response, _verifier = browser.authorize(rp)
    signed_in = browser.password_login(browser.follow_to_login(response), student)
    assert signed_in.status_code == 303
    assert not signed_in.headers["Location"].startswith(rp.redirect_uri)
    assert "code=" not in signed_in.headers["Location"]
    stopped = browser.c.get(signed_in.headers["Location"])
    assert stopped.headers["Location"].endswith("/account/first-password")


@pytest.fixture
def new_rp_consent(make_rp, svc):
    """An app the student agreed to earlier (its consent stored)."""
    from idp.store.models import Consent

    def make(student):
        rp = make_rp()
        with svc.db.session() as db:
            db.add(Consent(account_id=student.id, client_id=rp.client_id, scopes=["openid"]))
        return rp

    return make
