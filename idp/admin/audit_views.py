"""The audit log pages, ``/admin/audit``: search, CSV export, purge past the retention."""

from __future__ import annotations

from flask import Response, abort, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from idp.accounts.roles import Action, Actor, require
from idp.admin import accounts, audit_log
from idp.admin.forms import ActionForm, RetentionForm
from idp.admin.messages import EVENT_NAMES, describe
from idp.admin.views import bp, render
from idp.admin.web_auth import admin_required
from idp.audit import audit
from idp.japan_time import japan_second
from idp.services import services
from idp.store.models import Account


def _audit_filter(db) -> tuple[audit_log.AuditFilter, str | None]:
    """The search the form asks for, or why it cannot be done: a filter that cannot be
    applied never quietly falls away (the page would show every record as if they matched)."""
    error = None
    try:
        since = audit_log.parse_date(request.args.get("since"))
        until = audit_log.parse_date(request.args.get("until"))
    except ValueError:
        since = until = None
        error = _("日付は YYYY-MM-DD で入れてください。")
    if since and until and until < since:
        error = _("「この日まで」は、「この日から」と同じ日か、それよりあとの日にしてください。")
    code = request.args.get("school", "").strip()[:64]
    school = accounts.school_by_code(db, code)
    if code and school is None:
        error = describe("unknown_school", code)
    account_id = request.args.get("account_id") or None
    login = request.args.get("login_id", "").strip()
    if login and not code:
        error = _("ログインIDでさがすときは、学校コードも入れてください。")
    if login and school is not None:
        found = db.scalar(select(Account.id).where(Account.school_id == school.id,
                                                   Account.login_id == login[:64]))
        account_id = found or "-"
    return audit_log.AuditFilter(account_id=account_id,
                                 client_id=request.args.get("client_id") or None,
                                 event=request.args.get("event") or None, since=since,
                                 until=until, school_id=school.id if school else None,
                                 japan_days=True), error


@bp.get("/audit")
@admin_required
def audit_page(actor: Actor):
    services().events.flush()  # the records an SSO flow left in the event log, too
    with services().db.session() as db:
        flt, error = _audit_filter(db)
        rows = [] if error else audit_log.search(db, actor, flt, limit=200)
        people = audit_log.people_of(db, actor, rows)
        retention = audit_log.retention_days(db)
    form = RetentionForm(days=retention)
    return render("admin/audit.html", actor, 400 if error else 200, rows=rows, people=people,
                   japan_second=japan_second, event_names=EVENT_NAMES,
                   args=request.args, error=error, retention_form=form,
                   purge_form=ActionForm())


@bp.get("/audit.csv")
@admin_required
def audit_csv(actor: Actor):
    services().events.flush()
    with services().db.session() as db:
        flt, error = _audit_filter(db)
        if error:  # the page says what is wrong with the search, beside the form
            return redirect(url_for("admin.audit_page", **request.args.to_dict()), 303)
        body = "".join(audit_log.export_csv(db, actor, flt))
        audit(db, "audit.exported", actor=actor.account_id)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": "attachment; filename=audit.csv", "Cache-Control": "no-store"})

@bp.post("/audit/purge")
@admin_required
def purge(actor: Actor):
    require(actor, Action.SETTINGS)
    if not ActionForm().validate_on_submit():
        abort(400)
    with services().db.session() as db:
        audit_log.purge(db, actor=actor.account_id)
    return redirect(url_for("admin.audit_page"), 303)
