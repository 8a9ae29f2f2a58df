"""Transfer pages: the offer (or a platform admin's move) from an account's page, and
``/admin/transfers`` where a school sees the offers to and from it, and accepts, declines
or withdraws them. The rules are :mod:`idp.admin.transfers`'; these only parse and render."""

from __future__ import annotations

from flask import abort, redirect, url_for

from idp.accounts.roles import Actor
from idp.admin import accounts, transfers
from idp.admin.accounts_views import account_page
from idp.admin.forms import AcceptTransferForm, ActionForm, TransferForm
from idp.admin.messages import describe
from idp.admin.views import bp, render
from idp.admin.web_auth import admin_required
from idp.services import services


def _status_of(exc: accounts.AdminInputError) -> int:
    return 409 if isinstance(exc, transfers.TransferConflict) else 400


@bp.post("/accounts/<account_id>/transfer")
@admin_required
def account_transfer(actor: Actor, account_id: str):
    form = TransferForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        code = "invalid_login_id" if form.login_id.errors else "invalid_school_code"
        return account_page(actor, account_id, 400, describe(code), form)
    svc = services()
    with svc.db.session() as db:
        accounts.load_account(db, actor, account_id)  # only the account's own school offers
        try:
            transfers.request_transfer(svc, db, actor, account_id, form.school_code.data,
                                       form.login_id.data or None)
        except accounts.AdminInputError as exc:
            db.rollback()
            error, status = describe(exc.code), _status_of(exc)
        else:
            error, status = None, 303
    if error is not None:
        return account_page(actor, account_id, status, error, form)
    return redirect(url_for("admin.account_detail", account_id=account_id), 303)


def _transfers_page(actor: Actor, status: int = 200, error: str | None = None):
    with services().db.session() as db:
        rows = transfers.pending_offers(db, actor)
    incoming = [(t, a) for t, a in rows
                if actor.is_platform_admin or t.to_school_id == actor.school_id]
    outgoing = [(t, a) for t, a in rows if (t, a) not in incoming]
    return render("admin/transfers.html", actor, status, incoming=incoming,
                  outgoing=outgoing, accept_form=AcceptTransferForm(), form=ActionForm(),
                  error=error)


@bp.get("/transfers")
@admin_required
def transfers_page(actor: Actor):
    return _transfers_page(actor)


@bp.post("/transfers/<transfer_id>/accept")
@admin_required
def transfer_accept(actor: Actor, transfer_id: str):
    form = AcceptTransferForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _transfers_page(actor, 400, describe("invalid_login_id"))
    svc = services()
    with svc.db.session() as db:
        try:
            outcome = transfers.accept(svc, db, actor, transfer_id, form.login_id.data or None)
        except accounts.AdminInputError as exc:
            db.rollback()
            return _transfers_page(actor, _status_of(exc), describe(exc.code))
        account_id = outcome.account.id
    return redirect(url_for("admin.account_detail", account_id=account_id), 303)


@bp.post("/transfers/<transfer_id>/decline")
@admin_required
def transfer_decline(actor: Actor, transfer_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    with services().db.session() as db:
        try:
            transfers.decline(db, actor, transfer_id)
        except accounts.AdminInputError as exc:
            db.rollback()
            return _transfers_page(actor, _status_of(exc), describe(exc.code))
    return redirect(url_for("admin.transfers_page"), 303)
