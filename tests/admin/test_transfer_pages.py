"""Transfers on the admin pages and the CLI (issue 11): the offer from the account's page,
the receiving school's /admin/transfers, CSRF, clear errors; ``idp account transfer``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from idp.cli import Ctx, cli, register_extra_commands
from idp.store.models import Account, AccountTransfer, AuditEvent
from tests.admin.conftest import admin_sign_in, form_token, own_ip
from tests.admin.test_transfers import account_row

register_extra_commands()


@pytest.fixture
def signed_in(app):
    def make(admin):
        browser = own_ip(app.test_client())
        admin_sign_in(browser, admin)
        return browser

    return make


def test_offer_on_the_account_page_then_accept_on_the_receiving_schools_page(
        svc, signed_in, make_student, school, receiving, school_admin, receiving_admin):
    student = make_student()
    sender = signed_in(school_admin)
    page = sender.get(f"/admin/accounts/{student.id}")
    assert 'id="transfer-form"' in page.get_data(as_text=True)
    offered = sender.post(f"/admin/accounts/{student.id}/transfer", data={
        "csrf_token": form_token(sender, f"/admin/accounts/{student.id}"),
        "school_code": receiving.code, "login_id": "moved.one"})
    assert offered.status_code == 303
    assert 'id="transfer-pending"' in sender.get(f"/admin/accounts/{student.id}").get_data(
        as_text=True)
    assert account_row(svc, student.id).school_id == school.id

    receiver = signed_in(receiving_admin)
    listing = receiver.get("/admin/transfers").get_data(as_text=True)
    assert "山田 花子" in listing and "moved.one" in listing
    with svc.db.session() as s:
        offer = s.scalar(select(AccountTransfer).where(AccountTransfer.account_id == student.id))
    accepted = receiver.post(f"/admin/transfers/{offer.id}/accept", data={
        "csrf_token": form_token(receiver, "/admin/transfers"), "login_id": ""})
    assert accepted.status_code == 303
    assert accepted.headers["Location"].endswith(f"/admin/accounts/{student.id}")
    row = account_row(svc, student.id)
    assert (row.school_id, row.login_id) == (receiving.id, "moved.one")
    assert receiver.get(f"/admin/accounts/{student.id}").status_code == 200  # theirs now
    assert sender.get(f"/admin/accounts/{student.id}").status_code == 403  # no longer


def test_the_receiving_school_declines_on_its_page(svc, signed_in, make_student, school,
                                                    receiving, school_admin, receiving_admin):
    student = make_student()
    sender = signed_in(school_admin)
    sender.post(f"/admin/accounts/{student.id}/transfer", data={
        "csrf_token": form_token(sender, f"/admin/accounts/{student.id}"),
        "school_code": receiving.code})
    with svc.db.session() as s:
        offer = s.scalar(select(AccountTransfer).where(AccountTransfer.account_id == student.id))
    receiver = signed_in(receiving_admin)
    declined = receiver.post(f"/admin/transfers/{offer.id}/decline",
                             data={"csrf_token": form_token(receiver, "/admin/transfers")})
    assert declined.status_code == 303
    with svc.db.session() as s:
        assert s.get(AccountTransfer, offer.id).status == "declined"
        events = s.scalars(select(AuditEvent).where(AuditEvent.event == "transfer.declined",
                                                    AuditEvent.account_id == student.id))
        assert {e.school_id for e in events} == {school.id, receiving.id}
    assert account_row(svc, student.id).school_id == school.id


def test_the_pages_refuse_a_missing_csrf_token(svc, signed_in, make_student, school,
                                               receiving, school_admin, receiving_admin,
                                               platform_admin):
    student = make_student()
    platform = signed_in(platform_admin)
    forged = platform.post(f"/admin/accounts/{student.id}/transfer",
                           data={"school_code": receiving.code})
    assert forged.status_code == 400
    assert account_row(svc, student.id).school_id == school.id
    sender = signed_in(school_admin)
    sender.post(f"/admin/accounts/{student.id}/transfer", data={
        "csrf_token": form_token(sender, f"/admin/accounts/{student.id}"),
        "school_code": receiving.code})
    with svc.db.session() as s:
        offer = s.scalar(select(AccountTransfer).where(AccountTransfer.account_id == student.id))
    receiver = signed_in(receiving_admin)
    for path in (f"/admin/transfers/{offer.id}/accept", f"/admin/transfers/{offer.id}/decline"):
        assert receiver.post(path, data={"login_id": ""}).status_code == 400
    with svc.db.session() as s:
        assert s.get(AccountTransfer, offer.id).status == "offered"
    assert account_row(svc, student.id).school_id == school.id


def test_the_page_explains_an_unknown_school_and_a_bad_login_id(
        svc, signed_in, make_student, school, receiving, platform_admin):
    student = make_student()
    platform = signed_in(platform_admin)
    token = form_token(platform, f"/admin/accounts/{student.id}")
    unknown = platform.post(f"/admin/accounts/{student.id}/transfer", data={
        "csrf_token": token, "school_code": "no-such-school"})
    assert unknown.status_code == 400
    assert "その学校コードの学校は登録されていません。" in unknown.get_data(as_text=True)
    bad = platform.post(f"/admin/accounts/{student.id}/transfer", data={
        "csrf_token": token, "school_code": receiving.code, "login_id": "has space"})
    assert bad.status_code == 400 and "ログインIDは" in bad.get_data(as_text=True)
    moved = platform.post(f"/admin/accounts/{student.id}/transfer", data={
        "csrf_token": token, "school_code": receiving.code})
    assert moved.status_code == 303  # a platform admin moves at once
    assert account_row(svc, student.id).school_id == receiving.id


def test_a_third_school_cannot_accept_on_its_page(svc, signed_in, make_student, make_account,
                                                  new_school, receiving, school_admin):
    student = make_student()
    sender = signed_in(school_admin)
    sender.post(f"/admin/accounts/{student.id}/transfer", data={
        "csrf_token": form_token(sender, f"/admin/accounts/{student.id}"),
        "school_code": receiving.code})
    with svc.db.session() as s:
        offer = s.scalar(select(AccountTransfer).where(AccountTransfer.account_id == student.id))
    third = signed_in(make_account("school_admin", in_school=new_school("にし小学校")))
    token = form_token(third, "/admin/accounts/new")
    assert third.post(f"/admin/transfers/{offer.id}/accept",
                      data={"csrf_token": token}).status_code == 404
    assert offer.id not in third.get("/admin/transfers").get_data(as_text=True)
    assert account_row(svc, student.id).school_id != receiving.id


# ----------------------------------------------------------------------------- CLI
@pytest.fixture
def run(app):
    def invoke(*args: str):
        ctx = Ctx()
        ctx._app = app  # the test provider instead of one built from the environment
        return CliRunner().invoke(cli, list(args), obj=ctx)

    return invoke


def test_cli_moves_at_once_and_keeps_the_account_id(svc, run, make_student, school,
                                                    receiving):
    student = make_student()
    result = run("account", "transfer", "--school", school.code, "--login", student.login_id,
                 "--to", receiving.code, "--new-login", "cli.moved")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["id"] == student.id and body["to"] == receiving.code
    row = account_row(svc, student.id)
    assert (row.school_id, row.login_id) == (receiving.id, "cli.moved")
    with svc.db.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.event == "account.transferred",
                                                    AuditEvent.account_id == student.id))
        assert {(e.actor, e.school_id) for e in events} == {("cli", school.id),
                                                             ("cli", receiving.id)}


def test_cli_errors_are_one_clear_line(svc, run, make_student, make_account, school,
                                       receiving):
    student = make_student()
    resident = make_account("student", in_school=receiving)
    cases = {("--to", "no-such-school"): "unknown_school",
             ("--to", receiving.code, "--new-login", resident.login_id): "login_id_taken",
             ("--to", receiving.code, "--new-login", "bad login"): "invalid_login_id",
             ("--to", school.code): "same_school"}
    for extra, code in cases.items():
        result = run("account", "transfer", "--school", school.code, "--login",
                     student.login_id, *extra)
        assert result.exit_code == 2 and f"error: {code}" in result.output, result.output
    missing = run("account", "transfer", "--school", school.code, "--login", "nobody",
                  "--to", receiving.code)
    assert missing.exit_code == 2 and "no account nobody" in missing.output
    with svc.db.session() as s:
        assert s.get(Account, student.id).school_id == school.id
