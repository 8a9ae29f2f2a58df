"""Issue 8, first TOTP enrolment: after a password alone the TOTP page shows no secret until
a one-time enrolment code, handed over out of band, is given — printed by
``idp admin enrol-code`` or shown once to the admin who made the account (page and API).
Codes are stored hashed, single-use, expire after 72 h, and are audited."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
from click.testing import CliRunner
from sqlalchemy import select

from tests.admin.conftest import (
    admin_sign_in,
    enrolment_code_for,
    form_token,
    open_enrolment,
    own_ip,
)
from tests.conftest import csrf_of, unique

SECRET = re.compile(r'id="totp-secret" class="secret">([A-Z2-7]+)<')


def password_step(c, who):
    page = c.get("/admin/login")
    response = c.post("/admin/login", data={
        "csrf_token": csrf_of(page.get_data(as_text=True)), "school": who.school_code,
        "login_id": who.login_id, "password": who.password, "next": ""})
    assert response.headers["Location"].endswith("/admin/totp")
    return response


def events(svc, event: str, account_id: str):
    from idp.store.models import AuditEvent

    with svc.db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.event == event,
                                                      AuditEvent.account_id == account_id)))


def test_a_password_alone_never_shows_the_totp_secret(app, make_account):
    """Someone who learnt a new admin's password (a shoulder, a note) cannot enrol their
    own authenticator before the admin does."""
    admin = make_account("school_admin", totp=False)
    c = own_ip(app.test_client())
    password_step(c, admin)
    html = c.get("/admin/totp").get_data(as_text=True)
    assert 'id="totp-secret"' not in html and "otpauth://" not in html
    assert 'id="enrol-form"' in html
    guessed = c.post("/admin/totp", data={"csrf_token": csrf_of(html), "code": "123456"})
    assert guessed.status_code == 403 and 'id="totp-secret"' not in guessed.get_data(
        as_text=True)
    assert c.get("/admin/").status_code == 303  # still not signed in


def test_a_valid_code_opens_the_enrolment_once(app, make_account, svc):
    from idp.store.admin_models import AdminTotp

    admin = make_account("school_admin", totp=False)
    code = enrolment_code_for(svc, admin.id)
    c = own_ip(app.test_client())
    password_step(c, admin)
    assert open_enrolment(c, code.lower().replace("-", " ")).status_code == 303  # as typed
    html = c.get("/admin/totp").get_data(as_text=True)
    secret = SECRET.search(html).group(1)
    assert c.post("/admin/totp", data={"csrf_token": csrf_of(html),
                                       "code": pyotp.TOTP(secret).now()}).status_code == 303
    assert c.get("/admin/").status_code == 200
    with svc.db.session() as s:
        assert s.get(AdminTotp, admin.id).confirmed_at is not None
    assert len(events(svc, "admin.enrolment_code_used", admin.id)) == 1
    # The same code once more (say, photographed): refused, even after a TOTP reset.
    with svc.db.session() as s:
        s.delete(s.get(AdminTotp, admin.id))
    other = own_ip(app.test_client())
    password_step(other, admin)
    assert open_enrolment(other, code).status_code == 401
    assert 'id="totp-secret"' not in other.get("/admin/totp").get_data(as_text=True)


def test_wrong_expired_replaced_or_someone_elses_code_is_refused(app, make_account, svc):
    from idp.store.admin_models import AdminEnrolmentCode
    from idp.store.models import utcnow

    admin, colleague = make_account("school_admin", totp=False), make_account(
        "school_admin", totp=False)
    c = own_ip(app.test_client())
    password_step(c, admin)
    assert open_enrolment(c, "AAAA-BBBB-CCCC").status_code == 401
    assert open_enrolment(c, enrolment_code_for(svc, colleague.id)).status_code == 401
    old = enrolment_code_for(svc, admin.id)
    enrolment_code_for(svc, admin.id)  # a newer code replaces the older one
    assert open_enrolment(c, old).status_code == 401
    expired = enrolment_code_for(svc, admin.id)
    with svc.db.session() as s:
        for row in s.scalars(select(AdminEnrolmentCode).where(
                AdminEnrolmentCode.account_id == admin.id, AdminEnrolmentCode.used_at.is_(None))):
            row.expires_at = utcnow() - timedelta(seconds=1)
    assert open_enrolment(c, expired).status_code == 401
    for junk in ("", "x" * 40, "\u0000\u00ff", "-----"):
        assert open_enrolment(c, junk).status_code in (400, 401)
    assert 'id="totp-secret"' not in c.get("/admin/totp").get_data(as_text=True)
    assert len(events(svc, "admin.enrolment_code", admin.id)) >= 4
    assert all(e.outcome == "refused" for e in events(svc, "admin.enrolment_code", admin.id))


def test_codes_are_stored_hashed_and_expire_in_72_hours(svc, make_account):
    from idp.accounts.codes import digest
    from idp.store.admin_models import AdminEnrolmentCode

    admin = make_account("school_admin", totp=False)
    code = enrolment_code_for(svc, admin.id)
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    with svc.db.session() as s:
        row = s.scalar(select(AdminEnrolmentCode).where(
            AdminEnrolmentCode.account_id == admin.id))
        assert row.code_hash == digest(code.replace("-", "")) and code not in row.code_hash
        assert timedelta(hours=71) < row.expires_at - row.created_at <= timedelta(hours=72)


def test_the_cli_prints_a_code_for_staff_only(app, svc, make_account, monkeypatch):
    from idp.cli import Ctx, cli
    from idp.cli import admin as admin_cli

    admin_cli.register(cli)
    monkeypatch.setattr(Ctx, "app", property(lambda self: app))
    admin = make_account("platform_admin", totp=False)
    result = CliRunner().invoke(cli, ["admin", "enrol-code", "--school", admin.school_code,
                                      "--login", admin.login_id])
    assert result.exit_code == 0, result.output
    code = result.output.strip()
    [issued] = events(svc, "admin.enrolment_code_issued", admin.id)
    assert issued.actor == "cli"
    c = own_ip(app.test_client())
    password_step(c, admin)
    assert open_enrolment(c, code).status_code == 303
    assert SECRET.search(c.get("/admin/totp").get_data(as_text=True))
    student = make_account("student", totp=False)
    refused = CliRunner().invoke(cli, ["admin", "enrol-code", "--school", student.school_code,
                                       "--login", student.login_id])
    assert refused.exit_code == 2 and "not an active staff account" in refused.output
    assert "Traceback" not in refused.output


def test_the_platform_admin_who_creates_an_admin_sees_the_code_once(app, svc, school,
                                                                    platform_admin, token_of):
    from idp.store.models import Account

    c = app.test_client()
    admin_sign_in(c, platform_admin)
    login = unique("newadm")
    created = c.post("/admin/accounts/new", data={
        "csrf_token": form_token(c, "/admin/accounts/new"), "school": school.id,
        "login_id": login, "role": "school_admin"})
    assert created.status_code == 303
    page = c.get(created.headers["Location"]).get_data(as_text=True)
    code = re.search(r'id="shown-also-value" class="secret">([A-Z2-9-]+)<', page).group(1)
    assert 'id="shown-also"' not in c.get(created.headers["Location"]).get_data(as_text=True)
    with svc.db.session() as s:
        new = s.scalar(select(Account).where(Account.login_id == login))
        assert len(events(svc, "admin.enrolment_code_issued", new.id)) == 1
    # The API answer carries it too; a student account gets none.
    body = app.test_client().post("/api/admin/accounts", headers=token_of(platform_admin),
                                  json={"school_code": school.code, "login_id": unique("a"),
                                        "role": "platform_admin"}).get_json()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", body["enrolment_code"])
    body = app.test_client().post("/api/admin/accounts", headers=token_of(platform_admin),
                                  json={"school_code": school.code, "login_id": unique("s"),
                                        "role": "student"}).get_json()
    assert "enrolment_code" not in body
    # And the code shown on the page is the new admin's: it opens their enrolment.
    newcomer = own_ip(app.test_client())
    with svc.db.session() as s:
        from idp.signin.passwords import hash_password

        s.scalar(select(Account).where(Account.login_id == login)).password_hash = \
            hash_password("new admin passphrase 42")
    page = newcomer.get("/admin/login")
    newcomer.post("/admin/login", data={
        "csrf_token": csrf_of(page.get_data(as_text=True)), "school": school.code,
        "login_id": login, "password": "new admin passphrase 42", "next": ""})
    assert open_enrolment(newcomer, code).status_code == 303


def test_who_may_issue_an_enrolment_code(client, make_account, token_of):
    school_admin = make_account("school_admin")
    teacher = make_account("teacher", totp=False)
    other_admin = make_account("school_admin", totp=False)
    student = make_account("student", totp=False)
    ok = client.post(f"/api/admin/accounts/{teacher.id}/enrolment-code",
                     headers=token_of(school_admin))
    assert ok.status_code == 201 and ok.get_json()["expires_in"] == 72 * 3600
    # A school admin cannot open a colleague admin's enrolment (to enrol it themselves).
    assert client.post(f"/api/admin/accounts/{other_admin.id}/enrolment-code",
                       headers=token_of(school_admin)).status_code == 403
    # Students do not enrol TOTP; teachers issue nothing.
    response = client.post(f"/api/admin/accounts/{student.id}/enrolment-code",
                           headers=token_of(school_admin))
    assert response.status_code == 400 and response.get_json()["error"] == "not_staff"
    assert client.post(f"/api/admin/accounts/{teacher.id}/enrolment-code",
                       headers=token_of(make_account("teacher"))).status_code == 403


def test_an_admin_page_issues_a_teachers_code(app, make_account):
    school_admin = make_account("school_admin")
    teacher = make_account("teacher", totp=False)
    c = app.test_client()
    admin_sign_in(c, school_admin)
    page = c.get(f"/admin/accounts/{teacher.id}").get_data(as_text=True)
    assert 'id="account-enrol-code"' in page
    response = c.post(f"/admin/accounts/{teacher.id}/enrol-code",
                      data={"csrf_token": csrf_of(page)})
    assert response.status_code == 303
    shown = c.get(response.headers["Location"]).get_data(as_text=True)
    code = re.search(r'id="shown-value" class="secret">([A-Z2-9-]+)<', shown).group(1)
    teacher_browser = own_ip(app.test_client())
    password_step(teacher_browser, teacher)
    assert open_enrolment(teacher_browser, code).status_code == 303


def test_guessing_codes_is_slowed_down_and_does_not_spend_the_real_one(app, make_account,
                                                                       svc):
    admin = make_account("school_admin", totp=False)
    code = enrolment_code_for(svc, admin.id)
    c = own_ip(app.test_client())
    password_step(c, admin)
    for n in range(7):
        assert open_enrolment(c, f"AAAA-BBBB-CC{n}C").status_code == 401
    assert open_enrolment(c, code).status_code == 401  # throttled: not even tried
    from idp.store.admin_models import AdminEnrolmentCode

    with svc.db.session() as s:
        row = s.scalar(select(AdminEnrolmentCode).where(
            AdminEnrolmentCode.account_id == admin.id))
        assert row.used_at is None  # still valid for when the delay is over
