"""Account pages under ``/admin/accounts``: search, create (a reset code for the owner,
an enrolment code for staff), one account, lock/unlock/end sessions/codes."""

from __future__ import annotations

from datetime import datetime

from flask import Response, abort, redirect, request, url_for
from wtforms.fields.choices import SelectChoice

from idp.accounts.cards import card_status
from idp.accounts.roles import ACCOUNT_ROLES, STAFF_ROLES, Actor, may_grant_role
from idp.admin import accounts, slips, transfers
from idp.admin.forms import AccountForm, ActionForm, TransferForm
from idp.admin.messages import describe
from idp.admin.sheets import first_password_pdf, fonts
from idp.admin.views import bp, render, show_also, show_once
from idp.admin.web_auth import admin_required
from idp.japan_time import japan_date, japan_minute
from idp.services import services


@bp.get("/accounts")
@admin_required
def account_list(actor: Actor):
    with services().db.session() as db:
        school_code = request.args.get("school", "")[:64]
        school = accounts.school_by_code(db, school_code)
        page = request.args.get("page", "1")
        page_no = int(page) if page.isdigit() and 0 < int(page) < 10**5 else 1
        rows, total = accounts.list_accounts(
            db, actor, school_id=school.id if school else None,
            query=request.args.get("q", "")[:64], limit=100, offset=(page_no - 1) * 100)
        school_rows = accounts.list_schools(db, actor)
    return render("admin/accounts.html", actor, rows=rows, total=total, page=page_no,
                   schools=school_rows, school_code=school_code, q=request.args.get("q", ""))


@bp.route("/accounts/new", methods=["GET", "POST"])
@admin_required
def account_new(actor: Actor):
    form = AccountForm()
    with services().db.session() as db:
        form.school.choices = [SelectChoice(s.id, f"{s.code} {s.name}")
                               for s in accounts.list_schools(db, actor)]
    form.role.choices = [r for r in ACCOUNT_ROLES if may_grant_role(actor, r)]
    if request.method == "GET" or not form.validate_on_submit():
        return render("admin/account_new.html", actor,
                       400 if request.method == "POST" else 200, form=form)
    with services().db.session() as db:
        try:
            row, code = accounts.create_account(
                db, actor, school_id=form.school.data, login_id=form.login_id.data,
                display_name=form.display_name.data or "", role=form.role.data,
                grade=form.grade.data or "", class_name=form.class_name.data or "")
        except accounts.AdminInputError as exc:
            db.rollback()
            return render("admin/account_new.html", actor, 400, form=form,
                           error=describe(exc.code))
        account_id = row.id
        enrol = accounts.issue_enrolment_code(db, row, actor_id=actor.account_id) \
            if row.role in STAFF_ROLES else None
    show_once("reset_code", code)
    if enrol:
        show_also("enrolment_code", enrol)
    return redirect(url_for("admin.account_detail", account_id=account_id), 303)


@bp.get("/accounts/<account_id>")
@admin_required
def account_detail(actor: Actor, account_id: str):
    return account_page(actor, account_id)


def account_page(actor: Actor, account_id: str, status: int = 200, error: str | None = None,
                 transfer_form: TransferForm | None = None):
    """One account (also re-shown with ``error`` when an action on it was refused)."""
    with services().db.session() as db:
        row = accounts.load_account(db, actor, account_id)
        cards = accounts.account_cards(db, row.id)
        pending = transfers.pending_offer_for(db, row.id)
    return render("admin/account.html", actor, status, row=row, cards=cards,
                   card_status=card_status, japan_date=japan_date, form=ActionForm(),
                   error=error,
                   transfer=pending, transfer_form=transfer_form or TransferForm(),
                   guessing=_guessing_in_japan_time(row.id))


def _guessing_in_japan_time(account_id: str) -> dict | None:
    """The throttle's guessing flag with its start as a Japan minute (the flag keeps ISO
    UTC for the JSON API; the page is read by a school in Japan)."""
    flag = services().throttle.guessing_flag(account_id)
    if flag is None:
        return None
    return {**flag, "since": japan_minute(datetime.fromisoformat(flag["since"]))}


@bp.post("/accounts/<account_id>/<operation>")
@admin_required
def account_action(actor: Actor, account_id: str, operation: str):
    if operation not in ("lock", "unlock", "end-sessions", "reset-code", "enrol-code"):
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    svc = services()
    with svc.db.session() as db:
        row = accounts.load_account(db, actor, account_id)
        try:
            if operation in ("lock", "unlock"):
                accounts.set_locked(svc, db, actor, row, operation == "lock")
            elif operation == "end-sessions":
                accounts.end_sessions(svc, db, actor, row)
            elif operation == "enrol-code":
                show_once("enrolment_code", accounts.issue_enrolment_code(
                    db, row, actor_id=actor.account_id))
            else:
                show_once("reset_code", accounts.issue_reset_code(svc, db, actor, row))
        except accounts.AdminInputError:
            abort(400)
    if operation == "reset-code":  # the code, with the cards that still sign in
        return redirect(url_for("admin.account_after_reset", account_id=account_id), 303)
    return redirect(url_for("admin.account_detail", account_id=account_id), 303)


@bp.post("/accounts/<account_id>/slip")
@admin_required
def account_slip(actor: Actor, account_id: str):
    """The slip printed again with a new first password: the PDF is the answer (the password
    is never shown on a page, and the old one stops working now)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    fonts()  # no font, no change: SheetFontMissing is a readable 503 (idp.admin.views)
    svc = services()
    refused = None
    with svc.db.session() as db:
        row = accounts.load_account(db, actor, account_id)
        try:
            entry = slips.reprint_slip(svc, db, row, actor_id=actor.account_id)
        except accounts.AdminInputError as exc:
            refused = describe(exc.code, str(exc))
    if refused is not None:
        return account_page(actor, account_id, 400, error=refused)
    return Response(first_password_pdf([entry], issuer=svc.settings.issuer),
                    mimetype="application/pdf", headers={
                        "Content-Disposition": f"attachment; filename=slip-{entry['login_id']}.pdf",
                        "Cache-Control": "no-store"})
