"""Initial access tokens for dynamic client registration, ``/admin/initial-access-tokens``:
issue (the value is shown once) and revoke."""

from __future__ import annotations

from flask import abort, redirect, request, url_for
from sqlalchemy import select

from idp.accounts.roles import Action, Actor, require
from idp.admin.forms import ActionForm, IatForm
from idp.admin.messages import describe
from idp.admin.views import bp, render, show_once
from idp.admin.web_auth import admin_required
from idp.audit import audit
from idp.clients import access_tokens
from idp.services import services
from idp.store.admin_models import InitialAccessToken
from idp.store.models import utcnow


@bp.route("/initial-access-tokens", methods=["GET", "POST"])
@admin_required
def iats(actor: Actor):
    require(actor, Action.INITIAL_ACCESS_TOKENS)
    form = IatForm()
    with services().db.session() as db:
        if request.method == "POST" and form.validate_on_submit():
            try:
                row, value = access_tokens.issue_initial_access_token(
                    db, created_by=actor.account_id, label=form.label.data or "",
                    days=form.days.data,
                    max_uses=form.max_uses.data, allowed_scopes=form.allowed_scopes.data)
            except access_tokens.AccessTokenError as exc:
                db.rollback()
                rows = list(db.scalars(select(InitialAccessToken)))
                return render("admin/iats.html", actor, 400, form=form, rows=rows,
                               error=describe(exc.code), action_form=ActionForm())
            audit(db, "iat.issued", actor=actor.account_id, iat_id=row.id)
            db.commit()
            show_once("initial_access_token", value)
            return redirect(url_for("admin.iats"), 303)
        rows = list(db.scalars(select(InitialAccessToken)
                               .order_by(InitialAccessToken.created_at.desc())))
    return render("admin/iats.html", actor, 400 if request.method == "POST" else 200,
                   form=form, rows=rows, action_form=ActionForm())


@bp.post("/initial-access-tokens/<iat_id>/revoke")
@admin_required
def iat_revoke(actor: Actor, iat_id: str):
    require(actor, Action.INITIAL_ACCESS_TOKENS)
    if not ActionForm().validate_on_submit():
        abort(400)
    with services().db.session() as db:
        row = db.get(InitialAccessToken, iat_id) if len(iat_id) <= 32 else None
        if row is None:
            abort(404)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            audit(db, "iat.revoked", actor=actor.account_id, iat_id=row.id)
    return redirect(url_for("admin.iats"), 303)
