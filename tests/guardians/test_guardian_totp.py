"""A guardian's optional TOTP: enrolled from their own page with the current password and a
first code, then asked after the password (once per code, throttled), never at a card
sign-in; pupils cannot enrol; turning it off needs the password and a code."""

from __future__ import annotations

import re
import secrets
import time

import pyotp
import pytest

from tests.conftest import Browser, Student, csrf_of, unique
from tests.guardians.conftest import sign_in

SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')


def _post(device, path: str, **data):
    html = device.get("/account/totp/").get_data(as_text=True)
    return device.post(path, data={"csrf_token": csrf_of(html), **data})


def _enrol(device, person: Student) -> pyotp.TOTP:
    started = _post(device, "/account/totp/start", current=person.password)
    html = started.get_data(as_text=True)
    assert started.status_code == 200 and 'src="data:image/svg+xml' in html, html[:500]
    secret = pyotp.TOTP(SECRET.search(html).group(1))
    confirmed = _post(device, "/account/totp/confirm", code=secret.now())
    assert confirmed.status_code == 303, confirmed.get_data(as_text=True)[:500]
    return secret


def _password_step(device, person: Student):
    return Browser(device).password_login(device.get("/login"), person)


def _code_step(device, code: str):
    html = device.get("/login/totp").get_data(as_text=True)
    return device.post("/login/totp", data={"csrf_token": csrf_of(html), "code": code})


def _signed_in_as(device) -> bool:
    return device.get("/account/").status_code == 200


def _sign_out(device) -> None:
    html = device.get("/logout").get_data(as_text=True)
    device.post("/logout", data={"csrf_token": csrf_of(html), "confirm": "1"})
    assert not _signed_in_as(device)


def test_a_guardian_enrols_and_the_password_sign_in_then_asks_for_the_code(
        svc, app, guardian, guardian_device):
    sign_in(guardian_device, guardian)
    assert 'id="totp-page"' in guardian_device.get("/account/").get_data(as_text=True)
    secret = _enrol(guardian_device, guardian)
    _sign_out(guardian_device)
    phone = app.test_client()
    step = _password_step(phone, guardian)
    assert step.status_code == 303 and step.headers["Location"].startswith("/login/totp")
    assert phone.get("/account/").status_code == 303  # not signed in before the code
    wrong = _code_step(phone, "000000")
    assert wrong.status_code == 401 and not _signed_in_as(phone)
    code = secret.at(time.time() + 30)  # the next step: the enrolment used this one
    done = _code_step(phone, code)
    assert done.status_code == 303, done.get_data(as_text=True)[:300]
    assert _signed_in_as(phone)
    # The same code again, in another browser after the right password: refused (replay).
    other = app.test_client()
    _password_step(other, guardian)
    assert _code_step(other, code).status_code == 401 and not _signed_in_as(other)
    from idp.store.models import AuditEvent

    with svc.db.session() as s:
        events = [e.event for e in s.query(AuditEvent).filter_by(account_id=guardian.id)]
    assert "account.totp_enrolled" in events and "login.totp" in events


def test_wrong_codes_are_throttled(app, guardian, guardian_device):
    sign_in(guardian_device, guardian)
    secret = _enrol(guardian_device, guardian)
    _sign_out(guardian_device)
    phone = app.test_client()
    _password_step(phone, guardian)
    answers = [_code_step(phone, f"{n:06d}").status_code for n in range(8)]
    assert answers[:5] == [401] * 5 and 429 in answers[5:]
    # Slowed: even the right code waits (the delay is the throttle's, never a lock-out).
    assert _code_step(phone, secret.at(time.time() + 30)).status_code == 429
    assert not _signed_in_as(phone)


def test_enrolling_needs_the_current_password_and_a_code(guardian, guardian_device):
    sign_in(guardian_device, guardian)
    refused = _post(guardian_device, "/account/totp/start", current="not the password")
    assert refused.status_code == 401 and not SECRET.search(refused.get_data(as_text=True))
    # A code without a started enrolment, or a wrong first code, turns nothing on.
    assert _post(guardian_device, "/account/totp/confirm", code="123456").status_code == 409
    started = _post(guardian_device, "/account/totp/start", current=guardian.password)
    assert SECRET.search(started.get_data(as_text=True))
    assert _post(guardian_device, "/account/totp/confirm", code="000000").status_code == 401
    _sign_out(guardian_device)
    # Still off: the password alone signs in.
    assert _password_step(guardian_device, guardian).headers["Location"] != "/login/totp"
    assert _signed_in_as(guardian_device)


def test_turning_it_off_needs_the_password_and_a_code(app, guardian, guardian_device):
    sign_in(guardian_device, guardian)
    secret = _enrol(guardian_device, guardian)
    later = secret.at(time.time() + 30)
    assert _post(guardian_device, "/account/totp/off", current="wrong",
                 code=later).status_code == 401
    assert _post(guardian_device, "/account/totp/off", current=guardian.password,
                 code=later).status_code == 303
    _sign_out(guardian_device)
    _password_step(guardian_device, guardian)
    assert _signed_in_as(guardian_device)  # no code asked any more


@pytest.mark.parametrize("role", ["student", "teacher"])
def test_a_pupil_or_teacher_cannot_enrol_here(svc, app, make_student, role):
    person = make_student()
    if role == "teacher":
        from idp.store.models import Account

        with svc.db.session() as s:
            s.get(Account, person.id).role = "teacher"
    device = app.test_client()
    sign_in(device, person)
    assert device.get("/account/totp/").status_code == 403
    html = device.get("/account/password").get_data(as_text=True)
    refused = device.post("/account/totp/start", data={"csrf_token": csrf_of(html),
                                                        "current": person.password})
    assert refused.status_code == 403
    from idp.store.admin_models import AdminTotp

    with svc.db.session() as s:
        assert s.get(AdminTotp, person.id) is None


def test_csrf_is_required_to_enrol(guardian, guardian_device):
    sign_in(guardian_device, guardian)
    response = guardian_device.post("/account/totp/start",
                                    data={"current": guardian.password})
    assert response.status_code in (303, 400)
    assert not SECRET.search(guardian_device.get("/account/totp/").get_data(as_text=True))


def _guardian_in_new_school(svc) -> Student:
    from idp.signin.passwords import hash_password
    from idp.store.models import Account, School

    password = "guardian passphrase " + secrets.token_hex(2)
    with svc.db.session() as s:
        school = School(code=unique("gtotp"), name="確認コード小学校")
        s.add(school)
        s.flush()
        adult = Account(school_id=school.id, login_id=unique("grd"), role="guardian",
                        display_name="コード 保護者", password_hash=hash_password(password))
        s.add(adult)
    return Student(adult.id, school.code, adult.login_id, password)


def test_a_card_tapped_before_the_password_is_offered_only_after_the_code(
        crl_app, card_browser, new_card):
    svc = crl_app.extensions["mynagate"]
    person = _guardian_in_new_school(svc)
    device = card_browser.c
    sign_in(device, person)
    secret = _enrol(device, person)
    _sign_out(device)
    body = card_browser.use_card(new_card()).get_json()
    assert body["error"] == "card_not_linked"
    step = card_browser.password_login(device.get(body["redirect"]), person)
    assert step.headers["Location"].startswith("/login/totp")
    assert not _signed_in_as(device)  # neither signed in nor offered the link before the code
    done = _code_step(device, secret.at(time.time() + 30))
    assert done.status_code == 303 and done.headers["Location"].startswith("/login/link")
    assert card_browser.choose_link(device.get(done.headers["Location"])).status_code == 303


def test_the_card_sign_in_skips_the_code(crl_app, card_browser, new_card):
    from tests.card.helpers import CardBrowser

    person = _guardian_in_new_school(crl_app.extensions["mynagate"])
    card = new_card()
    linked = card_browser.link_after_card(card_browser.use_card(card), person)
    assert linked.status_code == 303
    _enrol(card_browser.c, person)
    _sign_out(card_browser.c)
    fresh = crl_app.test_client()
    assert CardBrowser(fresh).use_card(card).status_code == 200
    assert fresh.get("/account/").status_code == 200  # signed in by the card, no code
