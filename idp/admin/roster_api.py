"""The roster part of the admin API (``/api/admin/roster/...``): preview and import a
roster (Mynagate's CSV, or with ``?format=oneroster`` a OneRoster 1.2 bundle), the
first-password sheets, and a school's OneRoster bundle for one app (rules in
:mod:`idp.admin.roster_service` and :mod:`idp.admin.oneroster_export`). Imported at the end
of :mod:`idp.admin.api`, whose blueprint and ``api_route`` it uses."""

from __future__ import annotations

from flask import Response, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from idp.accounts.roles import Actor
from idp.admin import accounts, roster_service, slips
from idp.admin.api import ApiError, _bool_arg, _error, _str_arg, api_route, bp
from idp.admin.oneroster_export import export_bundle
from idp.admin.roster import RosterFileError
from idp.admin.sheets import SheetFontMissing, first_password_pdf, fonts
from idp.audit import audit
from idp.services import services


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge):
    return _error(413, "too_large", "the upload is larger than the provider accepts (1 MiB)")


@bp.errorhandler(SheetFontMissing)
def _no_font(exc: SheetFontMissing):
    return _error(503, "sheet_font_missing", str(exc))


def _roster_bytes() -> bytes:
    upload = request.files.get("file")
    data = upload.read() if upload is not None else request.get_data(cache=False)
    if not data:
        raise ApiError(400, "invalid_request", "send the CSV (or, with ?format=oneroster, "
                       "the zip) as the body")
    return data


@api_route("/roster/preview", ["POST"])
def roster_preview(db: Session, actor: Actor):
    try:
        plan = roster_service.preview(db, actor, _roster_bytes(),
                                      deactivate_missing=_bool_arg("deactivate_missing"),
                                      file_format=request.args.get("format", "csv"))
    except RosterFileError as exc:
        raise ApiError(400, exc.code, str(exc)) from exc
    return roster_service.plan_view(plan)


@api_route("/roster/import", ["POST"])
def roster_import(db: Session, actor: Actor):
    try:
        result = roster_service.import_roster(
            services(), db, actor, _roster_bytes(),
            deactivate_missing=_bool_arg("deactivate_missing"),
            file_format=request.args.get("format", "csv"))
    except RosterFileError as exc:
        raise ApiError(400, exc.code, str(exc)) from exc
    body = roster_service.plan_view(result.plan)
    body["applied"] = result.applied
    body["sheet_id"] = result.sheet_id
    return body, (200 if result.applied else 422)


@api_route("/roster/sheets/<sheet_id>", ["GET"])
def roster_sheet(db: Session, actor: Actor, sheet_id: str):
    entries = roster_service.load_sheet(services(), actor, sheet_id)
    if entries is None:
        raise ApiError(404, "not_found", "no such sheet (they last 30 minutes)")
    pdf = first_password_pdf(entries, issuer=services().settings.issuer)
    audit(db, "roster.sheet_downloaded", actor=actor.account_id, count=len(entries))
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": "attachment; filename=first-passwords.pdf",
        "Cache-Control": "no-store"})


@api_route("/accounts/<account_id>/slip", ["POST"])
def reprint_slip(db: Session, actor: Actor, account_id: str):
    """One account's slip again, with a new first password (the old one stops now)."""
    row = accounts.load_account(db, actor, account_id)
    fonts()  # no font, no change (a 503 before the password is replaced)
    pdf = first_password_pdf([slips.reprint_slip(services(), db, row, actor_id=actor.account_id)],
                             issuer=services().settings.issuer)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f"attachment; filename=slip-{row.login_id}.pdf",
        "Cache-Control": "no-store"})


@api_route("/roster/export", ["GET"])
def roster_export(db: Session, actor: Actor):
    if request.args.get("format", "oneroster") != "oneroster":
        raise ApiError(400, "bad_format", "format must be oneroster")
    # Refused over the documented maxLength, never cut (idp.admin.api._str_arg); a missing
    # or unknown app is a 404.
    export = export_bundle(db, actor, client_id=_str_arg("client_id", 64) or "",
                           school_code=_str_arg("school_code", 64),
                           pairwise_secret=services().settings.pairwise_secret)
    return Response(export.data, mimetype="application/zip", headers={
        "Content-Disposition": f"attachment; filename={export.filename}",
        "Cache-Control": "no-store", "X-Roster-Users": str(export.users)})
