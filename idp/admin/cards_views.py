"""Card bindings on the admin pages: the page after a reset code (unlink cards that should
no longer sign in) and revoking one card binding."""

from __future__ import annotations

from flask import abort, redirect, url_for
from flask_babel import gettext as _
from wtforms.fields.choices import SelectChoice

from idp.accounts.cards import card_status
from idp.accounts.roles import Action, Actor
from idp.admin import accounts
from idp.admin.forms import ActionForm, UnlinkCardsForm
from idp.admin.views import bp, render
from idp.admin.web_auth import admin_required
from idp.services import services
from idp.store.models import Account


def _unlink_form(db, row: Account) -> UnlinkCardsForm:
    form = UnlinkCardsForm()
    form.card_ids.choices = [
        SelectChoice(c.id, f"{c.serial} ({c.not_after:%Y-%m-%d})")
        for c in accounts.account_cards(db, row.id) if card_status(c) == "active"]
    return form


@bp.get("/accounts/<account_id>/reset")
@admin_required
def account_after_reset(actor: Actor, account_id: str):
    """After a reset code: the account's linked cards, to unlink any that should no longer
    sign in (a lost card, a card that is not the owner's) on the same page."""
    with services().db.session() as db:
        row = accounts.load_account(db, actor, account_id, Action.CARDS)
        form = _unlink_form(db, row)
    return render("admin/reset_done.html", actor, row=row, form=form)


@bp.post("/accounts/<account_id>/unlink-cards")
@admin_required
def account_unlink_cards(actor: Actor, account_id: str):
    svc = services()
    with svc.db.session() as db:
        row = accounts.load_account(db, actor, account_id, Action.CARDS)
        form = _unlink_form(db, row)
        if not form.validate_on_submit():  # none chosen, or a card not this account's
            return render("admin/reset_done.html", actor, 400, row=row, form=form,
                           error=_("つながりを解除するカードを選んでください。"))
        for card_id in form.card_ids.data:
            accounts.revoke_card(svc, db, actor, card_id)  # the existing revoke, audited
    return redirect(url_for("admin.account_detail", account_id=account_id), 303)


@bp.post("/cards/<card_id>/revoke")
@admin_required
def card_revoke(actor: Actor, card_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    svc = services()
    with svc.db.session() as db:
        card = accounts.revoke_card(svc, db, actor, card_id)
        account_id = card.account_id
    return redirect(url_for("admin.account_detail", account_id=account_id), 303)
