"""The roster import, ``/admin/roster``: upload a CSV, preview the plan, apply it, and
download the first-password sheets. Rules live in :mod:`idp.admin.roster_service`."""

from __future__ import annotations

import secrets

from flask import Response, abort, request
from flask_babel import gettext as _

from idp.accounts.roles import Action, Actor, Forbidden, may
from idp.admin import roster_service
from idp.admin.forms import RosterApplyForm, RosterUploadForm
from idp.admin.messages import describe
from idp.admin.roster import RosterFileError
from idp.admin.sheets import first_password_pdf
from idp.admin.views import bp, render
from idp.admin.web_auth import admin_required
from idp.audit import audit
from idp.services import services

PREVIEW_TTL = 30 * 60  # how long a previewed roster waits to be applied
MAX_ROSTER_BYTES = 900 * 1024


@bp.route("/roster", methods=["GET", "POST"])
@admin_required
def roster(actor: Actor):
    if not may(actor, Action.ROSTER, actor.school_id):
        raise Forbidden("roster")
    form = RosterUploadForm()
    if request.method == "GET" or not form.validate_on_submit():
        return render("admin/roster.html", actor, 400 if request.method == "POST" else 200,
                       form=form)
    data = form.file.data.read(MAX_ROSTER_BYTES + 1)
    if len(data) > MAX_ROSTER_BYTES:
        return render("admin/roster.html", actor, 400, form=form,
                       error=_("ファイルが大きすぎます(900KBまで)。"))
    deactivate = bool(form.deactivate_missing.data)
    with services().db.session() as db:
        try:
            plan = roster_service.preview(db, actor, data, deactivate_missing=deactivate)
        except RosterFileError as exc:
            return render("admin/roster.html", actor, 400, form=form,
                           error=_("ファイルを読めません: %(why)s",
                                   why=describe(exc.code, str(exc))))
    preview_id = secrets.token_urlsafe(16)
    services().store.put(f"roster-preview:{preview_id}",
                         {"actor": actor.account_id, "data": data.decode("latin-1"),
                          "deactivate": deactivate}, PREVIEW_TTL)
    apply_form = RosterApplyForm(preview_id=preview_id)
    return render("admin/roster_preview.html", actor, 200 if plan.valid else 422,
                   plan=plan, apply_form=apply_form, deactivate=deactivate)


@bp.post("/roster/apply")
@admin_required
def roster_apply(actor: Actor):
    svc = services()
    form = RosterApplyForm()
    if not form.validate_on_submit():
        abort(400)
    stored = svc.store.take(f"roster-preview:{form.preview_id.data[:64]}")
    if not stored or stored.get("actor") != actor.account_id:
        return render("admin/roster.html", actor, 400, form=RosterUploadForm(),
                       error=_("確認の時間が切れました。もう一度ファイルを選んでください。"))
    with svc.db.session() as db:
        result = roster_service.import_roster(svc, db, actor, stored["data"].encode("latin-1"),
                                              deactivate_missing=stored["deactivate"])
    if not result.applied:
        return render("admin/roster_preview.html", actor, 422, plan=result.plan,
                       apply_form=None, deactivate=stored["deactivate"])
    classes = sorted({(e["school_code"], e["grade"], e["class_name"]) for e in result.created})
    return render("admin/roster_done.html", actor, plan=result.plan,
                   sheet_id=result.sheet_id, classes=classes)


@bp.get("/roster/sheets/<sheet_id>.pdf")
@admin_required
def roster_sheet(actor: Actor, sheet_id: str):
    svc = services()
    entries = roster_service.load_sheet(svc, actor, sheet_id)
    if entries is None:
        abort(404)
    grade, klass = request.args.get("grade"), request.args.get("class")
    if grade is not None or klass is not None:
        entries = [e for e in entries if (grade is None or e["grade"] == grade)
                   and (klass is None or e["class_name"] == klass)]
    with svc.db.session() as db:
        audit(db, "roster.sheet_downloaded", actor=actor.account_id, count=len(entries))
    return Response(first_password_pdf(entries, issuer=svc.settings.issuer),
                    mimetype="application/pdf", headers={
                        "Content-Disposition": "inline; filename=first-passwords.pdf",
                        "Cache-Control": "no-store"})
