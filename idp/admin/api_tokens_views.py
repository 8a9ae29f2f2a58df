"""Admin API tokens, ``/admin/tokens``: a staff member issues (shown once) and revokes
their own bearer tokens for ``/api/admin``."""

from __future__ import annotations

from flask import abort, redirect, request, url_for
from sqlalchemy import select

from idp.accounts.roles import Actor
from idp.admin import credentials
from idp.admin.forms import ActionForm, ApiTokenForm
from idp.admin.views import bp, render, show_once
from idp.admin.web_auth import admin_required
from idp.audit import audit
from idp.services import services
from idp.store.admin_models import AdminApiToken
from idp.store.models import utcnow


@bp.route("/tokens", methods=["GET", "POST"])
@admin_required
def api_tokens(actor: Actor):
    form = ApiTokenForm()
    with services().db.session() as db:
        if request.method == "POST" and form.validate_on_submit():
            row, value = credentials.issue_api_token(db, actor=actor,
                                                     label=form.label.data or "",
                                                     days=form.days.data)
            audit(db, "admin.api_token_issued", actor=actor.account_id, token_id=row.id)
            db.commit()
            show_once("api_token", value)
            return redirect(url_for("admin.api_tokens"), 303)
        rows = list(db.scalars(select(AdminApiToken).where(
            AdminApiToken.account_id == actor.account_id)
            .order_by(AdminApiToken.created_at.desc())))
    return render("admin/tokens.html", actor, 400 if request.method == "POST" else 200,
                   form=form, rows=rows, action_form=ActionForm())


@bp.post("/tokens/<token_id>/revoke")
@admin_required
def api_token_revoke(actor: Actor, token_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    with services().db.session() as db:
        row = db.get(AdminApiToken, token_id) if len(token_id) <= 32 else None
        if row is None or row.account_id != actor.account_id:
            abort(404)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            audit(db, "admin.api_token_revoked", actor=actor.account_id, token_id=row.id)
    return redirect(url_for("admin.api_tokens"), 303)
