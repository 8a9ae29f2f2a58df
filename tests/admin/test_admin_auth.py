"""Admin sign-in: password + TOTP (with first-time enrolment), or a card session; the
15-minute idle limit; every admin change audited with its actor."""

from __future__ import annotations

import re
import secrets
import time

import pyotp

from tests.admin.conftest import (
    admin_sign_in,
    enrolment_code_for,
    form_token,
    open_enrolment,
    own_ip,
)
from tests.conftest import csrf_of


def _password_step(c, admin):
    page = c.get("/admin/login")
    return c.post("/admin/login", data={
        "csrf_token": csrf_of(page.get_data(as_text=True)), "school": admin.school_code,
        "login_id": admin.login_id, "password": admin.password, "next": "/admin/audit"})


def test_password_then_totp_signs_in_and_lands_on_next(app, platform_admin):
    c = app.test_client()
    assert c.get("/admin/").status_code == 303  # not signed in → admin sign-in
    assert _password_step(c, platform_admin).headers["Location"].endswith("/admin/totp")
    assert c.get("/admin/").status_code == 303  # password alone is not enough
    page = c.get("/admin/totp")
    response = c.post("/admin/totp", data={
        "csrf_token": csrf_of(page.get_data(as_text=True)),
        "code": pyotp.TOTP(platform_admin.totp_secret).now()})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/audit"
    assert c.get("/admin/").status_code == 200


def test_first_sign_in_enrols_totp_and_a_replayed_code_is_refused(app, make_account, svc):
    from idp.store.admin_models import AdminTotp

    admin = make_account("school_admin", totp=False)
    c = own_ip(app.test_client())
    _password_step(c, admin)
    # Issue 8: the first enrolment needs the one-time enrolment code handed over.
    assert open_enrolment(c, enrolment_code_for(svc, admin.id)).status_code == 303
    html = c.get("/admin/totp").get_data(as_text=True)
    secret = re.search(r'id="totp-secret" class="secret">([A-Z2-7]+)<', html).group(1)
    code = pyotp.TOTP(secret).now()
    wrong = c.post("/admin/totp", data={"csrf_token": csrf_of(html), "code": "000000"
                                        if code != "000000" else "111111"})
    assert wrong.status_code == 401
    ok = c.post("/admin/totp", data={"csrf_token": csrf_of(html), "code": code})
    assert ok.status_code == 303
    with svc.db.session() as s:
        assert s.get(AdminTotp, admin.id).confirmed_at is not None
    # The same code again (another browser, same window) is refused: single use.
    other = own_ip(app.test_client())
    _password_step(other, admin)
    html = other.get("/admin/totp").get_data(as_text=True)
    assert 'id="totp-secret"' not in html  # enrolled: the secret is never shown again
    assert other.post("/admin/totp", data={"csrf_token": csrf_of(html),
                                           "code": code}).status_code == 401


def test_wrong_password_and_non_admin_get_the_same_refusal(app, make_account, student):
    c = own_ip(app.test_client())
    admin = make_account("platform_admin")
    admin.password = "not the password"
    assert _password_step(c, admin).status_code == 401
    # Issue 8: a student is refused; a teacher goes on to TOTP (only to link cards).
    pupil = make_account("student", totp=False)
    response = _password_step(c, pupil)
    assert response.status_code == 401
    assert "/admin/totp" not in response.headers.get("Location", "")
    teacher = make_account("teacher")
    assert _password_step(c, teacher).headers["Location"].endswith("/admin/totp")


def test_idle_admin_session_must_sign_in_again(app, platform_admin):
    c = app.test_client()
    admin_sign_in(c, platform_admin)
    assert c.get("/admin/accounts").status_code == 200
    with c.session_transaction() as session:
        session["admin_seen"] = time.time() - 15 * 60 - 5
    response = c.get("/admin/accounts")
    assert response.status_code == 303
    assert "reason=stale" in response.headers["Location"]
    assert c.get("/admin/accounts").status_code == 303  # stays out until signed in again


def test_activity_within_fifteen_minutes_keeps_the_session(app, platform_admin):
    c = app.test_client()
    admin_sign_in(c, platform_admin)
    with c.session_transaction() as session:
        session["admin_seen"] = time.time() - 14 * 60
    assert c.get("/admin/accounts").status_code == 200


def _card_binding(svc, account_id, *, linked_with_mfa: bool) -> str:
    from datetime import timedelta

    from idp.store.models import CardBinding, utcnow

    with svc.db.session() as s:
        row = CardBinding(account_id=account_id, issuer="CN=test", serial=secrets.token_hex(8),
                          certificate_sha256=secrets.token_hex(32),
                          not_after=utcnow() + timedelta(days=365),
                          linked_with_mfa=linked_with_mfa)
        s.add(row)
    return row.id


def _card_session(c, account_id, auth_time, binding_id=None):
    from idp.signin.context import ACR_CARD, AMR_CARD

    with c.session_transaction() as session:
        session.update(account_id=account_id, auth_time=int(auth_time), acr=ACR_CARD,
                       amr=AMR_CARD, sid="sid-test")
        if binding_id:
            session["card_binding"] = binding_id


def test_card_sign_in_counts_as_second_factor(app, svc, make_account):
    # Issue 8: only with a card that was linked under TOTP (the session names the binding).
    admin = make_account("school_admin", totp=False)
    c = app.test_client()
    _card_session(c, admin.id, time.time(), _card_binding(svc, admin.id, linked_with_mfa=True))
    assert c.get("/admin/accounts").status_code == 200


def test_card_linked_without_totp_or_someone_elses_is_no_second_factor(app, svc,
                                                                       make_account):
    admin, other = make_account("school_admin"), make_account("school_admin")
    for binding in (None, _card_binding(svc, admin.id, linked_with_mfa=False),
                    _card_binding(svc, other.id, linked_with_mfa=True), "x" * 40):
        c = app.test_client()
        _card_session(c, admin.id, time.time(), binding)
        assert c.get("/admin/accounts").status_code == 303, binding


def test_revoked_mfa_card_is_no_second_factor(app, svc, make_account):
    from idp.store.models import CardBinding

    admin = make_account("school_admin")
    binding = _card_binding(svc, admin.id, linked_with_mfa=True)
    with svc.db.session() as s:
        s.get(CardBinding, binding).status = "revoked"
    c = app.test_client()
    _card_session(c, admin.id, time.time(), binding)
    assert c.get("/admin/accounts").status_code == 303


def test_old_card_sign_in_needs_a_fresh_one(app, svc, make_account):
    admin = make_account("school_admin", totp=False)
    c = app.test_client()
    _card_session(c, admin.id, time.time() - 3600,
                  _card_binding(svc, admin.id, linked_with_mfa=True))
    assert c.get("/admin/accounts").status_code == 303


def test_password_only_session_is_not_an_admin_session(app, browser, rp, make_account):
    from tests.conftest import Student

    admin = make_account("platform_admin")
    student_like = Student(admin.id, admin.school_code, admin.login_id, admin.password)
    browser.sign_in_and_authorize(rp, student_like)  # signed in with the password only
    assert browser.c.get("/admin/accounts").status_code == 303


def test_admin_changes_are_audited_with_the_admin(app, school_admin, make_account, svc):
    from sqlalchemy import select

    from idp.store.models import AuditEvent

    c = app.test_client()
    admin_sign_in(c, school_admin)
    target = make_account("student", totp=False)
    response = c.post(f"/admin/accounts/{target.id}/lock",
                      data={"csrf_token": form_token(c, f"/admin/accounts/{target.id}")})
    assert response.status_code == 303
    with svc.db.session() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.event == "account.locked",
                                                  AuditEvent.account_id == target.id))
    assert event is not None and event.actor == school_admin.id


def test_locking_ends_the_locked_accounts_sessions(app, browser, rp, make_student,
                                                   school_admin, token_of):
    student = make_student()
    browser.sign_in_and_authorize(rp, student)
    assert browser.c.get("/account/").status_code == 200
    response = app.test_client().post(f"/api/admin/accounts/{student.id}/lock",
                                      headers=token_of(school_admin))
    assert response.status_code == 200 and response.get_json()["locked"] is True
    assert browser.c.get("/account/").status_code == 303
