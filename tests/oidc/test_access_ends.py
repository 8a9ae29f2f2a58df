"""Tokens end when the person's access ends (issue 8): locking, deactivating, ending the
sessions, an admin password reset (issuing the code and redeeming it), the student's own
password change and revoking a card each revoke every refresh-token family of the account and
make its access tokens inactive, through the real entry points (admin page, admin API,
account page, CLI). Both backends: run with MYNAGATE_TEST_BACKEND=postgres too."""

# ruff: noqa: F811 - the shared admin fixtures are imported, then requested by name
from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.admin.conftest import (  # noqa: F401 - shared admin fixtures
    admin_sign_in,
    card_for,
    form_token,
    make_account,
    school_admin,
    token_of,
)
from tests.conftest import RP, Browser, Student, csrf_of, unique
from tests.oidc.conftest import basic_auth, refresh, sign_in_tokens, userinfo

OFFLINE = "openid offline_access"


@dataclass
class Held:
    """What one app holds for the student: its tokens, and the app to present them as."""

    rp: RP
    access: str
    refresh: str


def _introspect(client, held: Held, token: str) -> dict:
    response = client.post("/introspect", data={"token": token},
                           headers=basic_auth(held.rp.client_id, held.rp.client_secret))
    assert response.status_code == 200
    return response.get_json()


def _holdings(browser: Browser, rps: list[RP], student: Student) -> list[Held]:
    held = []
    for rp in rps:
        body = sign_in_tokens(browser, rp, student, scope=OFFLINE).body
        held.append(Held(rp, body["access_token"], body["refresh_token"]))
    return held


def assert_live(client, held: Held) -> None:
    assert _introspect(client, held, held.access)["active"] is True
    assert _introspect(client, held, held.refresh)["active"] is True
    assert userinfo(client, held.access).status_code == 200


def assert_ended(client, held: Held) -> None:
    """Introspection says inactive, UserInfo says invalid_token, refresh is invalid_grant."""
    assert _introspect(client, held, held.access) == {"active": False}
    assert _introspect(client, held, held.refresh) == {"active": False}
    info = userinfo(client, held.access)
    assert info.status_code == 401
    assert 'error="invalid_token"' in info.headers["WWW-Authenticate"]
    renewed = refresh(client, held.rp, held.refresh)
    assert renewed.status_code == 400, renewed.get_json()
    assert renewed.get_json()["error"] == "invalid_grant"


def _audited(svc, account_id: str, reason: str) -> bool:
    from idp.store.models import AuditEvent

    with svc.db.session() as db:
        events = db.scalars(select(AuditEvent).where(
            AuditEvent.event == "token.account_revoked",
            AuditEvent.account_id == account_id)).all()
    return any(e.details.get("reason") == reason for e in events)


@pytest.fixture
def two_apps(make_rp):
    return [make_rp(host="math.example.test"), make_rp(host="kanji.example.test")]


@pytest.fixture
def classmate(browser, new_browser, rp, make_student):
    """Another student on the same apps: nothing done to our student may touch them."""
    other = make_student()
    return _holdings(new_browser(), [rp], other)[0]


# ----------------------------------------------------------------------------- admin API
@pytest.mark.parametrize(("operation", "reason"), [
    ("lock", "account_locked"), ("end-sessions", "sessions_ended"),
    ("reset-code", "password_reset_issued")])
def test_admin_api_action_ends_every_app_token(app, client, browser, two_apps, make_student,
                                               school_admin, token_of, classmate, svc,
                                               operation, reason):
    student = make_student()
    held = _holdings(browser, two_apps, student)
    for h in held:
        assert_live(client, h)
    response = app.test_client().post(f"/api/admin/accounts/{student.id}/{operation}",
                                      headers=token_of(school_admin))
    assert response.status_code in (200, 201), response.get_json()
    for h in held:
        assert_ended(client, h)
    assert _audited(svc, student.id, reason)
    # A classmate's tokens on the same app are untouched.
    assert_live(client, classmate)


def test_unlocking_does_not_bring_tokens_back(app, client, browser, rp, make_student,
                                              school_admin, token_of):
    student = make_student()
    [held] = _holdings(browser, [rp], student)
    admin = app.test_client()
    admin.post(f"/api/admin/accounts/{student.id}/lock", headers=token_of(school_admin))
    admin.post(f"/api/admin/accounts/{student.id}/unlock", headers=token_of(school_admin))
    assert_ended(client, held)


def test_admin_api_card_revoke_ends_the_tokens(app, client, browser, two_apps, make_student,
                                               school_admin, token_of, card_for, svc):
    student = make_student()
    card = card_for(student.id)
    held = _holdings(browser, two_apps, student)
    response = app.test_client().post(f"/api/admin/cards/{card.id}/revoke",
                                      headers=token_of(school_admin))
    assert response.status_code == 200, response.get_json()
    for h in held:
        assert_ended(client, h)
    assert _audited(svc, student.id, "card_revoked")


# ----------------------------------------------------------------------------- admin pages
@pytest.mark.parametrize("operation", ["lock", "end-sessions", "reset-code"])
def test_admin_page_action_ends_the_tokens(app, client, browser, rp, make_student,
                                           school_admin, operation):
    student = make_student()
    [held] = _holdings(browser, [rp], student)
    page = app.test_client()
    admin_sign_in(page, school_admin)
    response = page.post(f"/admin/accounts/{student.id}/{operation}", data={
        "csrf_token": form_token(page, f"/admin/accounts/{student.id}")})
    assert response.status_code == 303
    assert_ended(client, held)


def test_admin_page_card_revoke_ends_the_tokens(app, client, browser, rp, make_student,
                                                school_admin, card_for):
    student = make_student()
    card = card_for(student.id)
    [held] = _holdings(browser, [rp], student)
    page = app.test_client()
    admin_sign_in(page, school_admin)
    response = page.post(f"/admin/cards/{card.id}/revoke", data={
        "csrf_token": form_token(page, f"/admin/accounts/{student.id}")})
    assert response.status_code == 303
    assert_ended(client, held)


# ----------------------------------------------------------------------------- CLI
def test_cli_card_revoke_ends_the_tokens(app, client, browser, rp, make_student, card_for,
                                         svc):
    from idp.cli import Ctx, cli, register_extra_commands

    register_extra_commands()
    student = make_student()
    card = card_for(student.id)
    [held] = _holdings(browser, [rp], student)
    ctx = Ctx()
    ctx._app = app
    result = CliRunner().invoke(cli, ["card", "revoke", card.id, "--reason", "lost"], obj=ctx)
    assert result.exit_code == 0, result.output
    assert_ended(client, held)
    assert _audited(svc, student.id, "card_revoked")


# ----------------------------------------------------------------------------- roster
def test_roster_deactivation_ends_the_tokens(app, client, new_browser, rp, make_account,
                                             token_of, svc):
    """A leaver deactivated by the roster import loses every token; a student kept on the
    roster keeps theirs."""
    from idp.signin.passwords import hash_password
    from idp.store.models import Account, School

    with svc.db.session() as db:
        school = School(code=unique("leave"), name="卒業小学校")
        db.add(school)
        db.flush()
        students = []
        for _ in range(2):
            password = "leaver passphrase " + secrets.token_hex(3)
            row = Account(school_id=school.id, login_id=unique("stu"), display_name="児童",
                          grade="6", class_name="1", password_hash=hash_password(password))
            db.add(row)
            db.flush()
            students.append(Student(row.id, school.code, row.login_id, password))
    leaver, stays = students
    [leaver_held] = _holdings(new_browser(), [rp], leaver)
    [stays_held] = _holdings(new_browser(), [rp], stays)
    admin = make_account("school_admin", in_school=school)
    csv = ("学校コード,ログインID,氏名,学年,組,役割\n"
           f"{school.code},{stays.login_id},児童,6,1,児童\n")
    response = app.test_client().post(
        "/api/admin/roster/import", data=csv.encode(), content_type="text/csv",
        headers=token_of(admin), query_string={"deactivate_missing": "true"})
    assert response.status_code == 200, response.get_json()
    assert [d["login_id"] for d in response.get_json()["deactivate"]] == [leaver.login_id]
    assert_ended(client, leaver_held)
    assert_live(client, stays_held)
    assert _audited(svc, leaver.id, "account_deactivated")


# ----------------------------------------------------------------------------- account page
def test_own_password_change_ends_the_tokens(client, browser, two_apps, make_student, svc):
    """Someone who learnt the password and took tokens to an app loses them when the
    student changes it."""
    student = make_student()
    held = _holdings(browser, two_apps, student)
    page = browser.c.get("/account/password").get_data(as_text=True)
    done = browser.c.post("/account/password", data={
        "csrf_token": csrf_of(page), "current": student.password,
        "new": "a brand new phrase 42", "repeat": "a brand new phrase 42"})
    assert done.status_code == 303
    for h in held:
        assert_ended(client, h)
    assert _audited(svc, student.id, "password_changed")


def test_a_refused_password_change_leaves_the_tokens(client, browser, rp, make_student):
    student = make_student()
    [held] = _holdings(browser, [rp], student)
    page = browser.c.get("/account/password").get_data(as_text=True)
    wrong = browser.c.post("/account/password", data={
        "csrf_token": csrf_of(page), "current": "not my password at all",
        "new": "a brand new phrase 42", "repeat": "a brand new phrase 42"})
    assert wrong.status_code == 400
    assert_live(client, held)


def test_redeeming_a_reset_code_ends_tokens_taken_since_it_was_issued(
        app, client, browser, new_browser, rp, make_student, school_admin, token_of, svc):
    """The code was issued (ending the old tokens); whoever still knew the old password and
    signed in before the student redeemed it loses those newer tokens too."""
    student = make_student()
    code = app.test_client().post(f"/api/admin/accounts/{student.id}/reset-code",
                                  headers=token_of(school_admin)).get_json()["reset_code"]
    [held] = _holdings(new_browser(), [rp], student)  # the old password still works
    assert_live(client, held)
    reset = new_browser().c
    page = reset.get("/account/reset").get_data(as_text=True)
    done = reset.post("/account/reset", data={
        "csrf_token": csrf_of(page), "school": student.school_code,
        "login_id": student.login_id, "code": code, "new": "my own secret words",
        "repeat": "my own secret words"})
    assert done.status_code == 200
    assert_ended(client, held)
    assert _audited(svc, student.id, "password_reset")


# ----------------------------------------------------------------------------- state checks
def test_locked_account_tokens_are_inactive_even_if_not_revoked(client, browser, rp,
                                                                 make_student, svc):
    """Defence in depth: a lock written straight to the database (no revocation ran) still
    makes introspection, UserInfo and refresh refuse the account's tokens."""
    from idp.store.models import Account

    student = make_student()
    [held] = _holdings(browser, [rp], student)
    with svc.db.session() as db:
        db.get(Account, student.id).locked = True
    assert_ended(client, held)


# ----------------------------------------------------------------------------- codes
@pytest.mark.parametrize("operation", ["end-sessions", "reset-code", "lock"])
def test_a_code_issued_before_access_ended_is_refused(app, client, browser, rp, make_student,
                                                      school_admin, token_of, operation):
    """Someone who signed in as the student got a code to an app; the school ends the
    access before the app redeems it: the code is refused like the tokens."""
    from tests.conftest import redeem

    student = make_student()
    query, verifier = browser.sign_in_and_authorize(rp, student)
    response = app.test_client().post(f"/api/admin/accounts/{student.id}/{operation}",
                                      headers=token_of(school_admin))
    assert response.status_code in (200, 201)
    late = redeem(client, rp, query["code"], verifier)
    assert late.status_code == 400 and late.get_json()["error"] == "invalid_grant"


def test_a_code_issued_after_access_ended_works(app, client, new_browser, rp, make_student,
                                                school_admin, token_of):
    """The student signs in again after the reset: the new code and tokens work."""
    student = make_student()
    app.test_client().post(f"/api/admin/accounts/{student.id}/end-sessions",
                           headers=token_of(school_admin))
    [held] = _holdings(new_browser(), [rp], student)
    assert_live(client, held)


def test_a_code_issued_before_the_password_change_is_refused(client, browser, new_browser, rp,
                                                             make_student):
    from tests.conftest import redeem

    student = make_student()
    intruder = new_browser()  # knows the password, on another PC
    query, verifier = intruder.sign_in_and_authorize(rp, student)
    browser.sign_in_and_authorize(rp, student)
    page = browser.c.get("/account/password").get_data(as_text=True)
    assert browser.c.post("/account/password", data={
        "csrf_token": csrf_of(page), "current": student.password,
        "new": "a brand new phrase 42", "repeat": "a brand new phrase 42"}).status_code == 303
    late = redeem(client, rp, query["code"], verifier)
    assert late.status_code == 400 and late.get_json()["error"] == "invalid_grant"
