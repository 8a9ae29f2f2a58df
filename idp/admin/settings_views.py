"""Platform settings on the admin pages: the audit retention (``/admin/settings/...``)."""

from __future__ import annotations

from flask import abort, redirect, url_for

from idp.accounts.roles import Action, Actor, require
from idp.admin import audit_log
from idp.admin.forms import RetentionForm
from idp.admin.views import bp
from idp.admin.web_auth import admin_required
from idp.services import services


@bp.post("/settings/retention")
@admin_required
def retention(actor: Actor):
    require(actor, Action.SETTINGS)
    form = RetentionForm()
    if not form.validate_on_submit():
        abort(400)
    with services().db.session() as db:
        audit_log.set_retention_days(db, actor, form.days.data)
    return redirect(url_for("admin.audit_page"), 303)
