"""The roster import, ``/admin/roster``: upload a CSV, preview the plan, apply it, and
download the first-password sheets. Rules live in :mod:`idp.admin.roster_service`."""

from __future__ import annotations

import csv
import io
import secrets

from flask import Response, abort, request
from flask_babel import gettext as _

from idp.accounts.roles import Action, Actor, Forbidden, may
from idp.admin import oneroster, roster_service
from idp.admin.accounts import AdminInputError, NotFound
from idp.admin.forms import RosterApplyForm, RosterExportForm, RosterUploadForm
from idp.admin.messages import describe
from idp.admin.oneroster_export import NEEDED_SCOPES, export_bundle
from idp.admin.roster import FIELDS, JAPANESE_COLUMNS, RosterFileError
from idp.admin.sheets import first_password_pdf
from idp.admin.views import bp, render
from idp.admin.web_auth import admin_required
from idp.audit import audit
from idp.services import services
from idp.store.models import Client, School

PREVIEW_TTL = 30 * 60  # how long a previewed roster waits to be applied
MAX_ROSTER_BYTES = 900 * 1024


@bp.route("/roster", methods=["GET", "POST"])
@admin_required
def roster(actor: Actor):
    if not may(actor, Action.ROSTER, actor.school_id):
        raise Forbidden("roster")
    form = RosterUploadForm()
    if request.method == "GET" or not form.validate_on_submit():
        return _roster_page(actor, 400 if request.method == "POST" else 200, form=form)
    data = form.file.data.read(MAX_ROSTER_BYTES + 1)
    if len(data) > MAX_ROSTER_BYTES:
        return _roster_page(actor, 400, form=form, error=_("ファイルが大きすぎます(900KBまで)。"))
    deactivate = bool(form.deactivate_missing.data)
    # A zip is a OneRoster bundle (idp.admin.oneroster); anything else a CSV roster.
    file_format = "oneroster" if oneroster.looks_like_zip(data) else "csv"
    with services().db.session() as db:
        try:
            plan = roster_service.preview(db, actor, data, deactivate_missing=deactivate,
                                          file_format=file_format)
        except RosterFileError as exc:
            return _roster_page(actor, 400, form=form, error=_(
                "ファイルを読めません: %(why)s", why=describe(exc.code, exc.detail)))
        rows = roster_service.preview_table(db, plan)
    preview_id = secrets.token_urlsafe(16)
    services().store.put(f"roster-preview:{preview_id}",
                         {"actor": actor.account_id, "data": data.decode("latin-1"),
                          "deactivate": deactivate, "format": file_format}, PREVIEW_TTL)
    apply_form = RosterApplyForm(preview_id=preview_id)
    return render("admin/roster_preview.html", actor, 200 if plan.valid else 422,
                   plan=plan, rows=rows, apply_form=apply_form, deactivate=deactivate)


@bp.post("/roster/apply")
@admin_required
def roster_apply(actor: Actor):
    svc = services()
    form = RosterApplyForm()
    if not form.validate_on_submit():
        abort(400)
    stored = svc.store.take(f"roster-preview:{form.preview_id.data[:64]}")
    if not stored or stored.get("actor") != actor.account_id:
        return _roster_page(actor, 400, form=RosterUploadForm(), error=_(
            "確認の時間が切れました。もう一度ファイルを選んでください。"))
    with svc.db.session() as db:
        result = roster_service.import_roster(svc, db, actor, stored["data"].encode("latin-1"),
                                              deactivate_missing=stored["deactivate"],
                                              file_format=stored.get("format", "csv"))
        rows = roster_service.preview_table(db, result.plan) if not result.applied else []
    if not result.applied:
        return render("admin/roster_preview.html", actor, 422, plan=result.plan, rows=rows,
                       apply_form=None, deactivate=stored["deactivate"])
    # One sheet per class; the teachers share one (「先生」, whatever grade the file gave).
    classes = sorted({(e["school_code"], "", "", True) if e.get("role") == "teacher"
                      else (e["school_code"], e["grade"], e["class_name"], False)
                      for e in result.created})
    return render("admin/roster_done.html", actor, plan=result.plan,
                   sheet_id=result.sheet_id, classes=classes)


@bp.get("/roster/sheets/<sheet_id>.pdf")
@admin_required
def roster_sheet(actor: Actor, sheet_id: str):
    svc = services()
    entries = roster_service.load_sheet(svc, actor, sheet_id)
    if entries is None:
        abort(404, description=_(
            "この用紙は、もうダウンロードできません(取り込みから30分で消えます)。"
            "用紙が必要な人は、アカウントのページの「新しいパスワードで用紙を印刷する」を"
            "使ってください。"))
    grade, klass = request.args.get("grade"), request.args.get("class")
    if request.args.get("role") == "teacher":
        entries = [e for e in entries if e.get("role") == "teacher"]
    elif grade is not None or klass is not None:
        entries = [e for e in entries if e.get("role") != "teacher"
                   and (grade is None or e["grade"] == grade)
                   and (klass is None or e["class_name"] == klass)]
    with svc.db.session() as db:
        audit(db, "roster.sheet_downloaded", actor=actor.account_id, count=len(entries))
    return Response(first_password_pdf(entries, issuer=svc.settings.issuer),
                    mimetype="application/pdf", headers={
                        "Content-Disposition": "inline; filename=first-passwords.pdf",
                        "Cache-Control": "no-store"})


#: The template CSV's example rows (the admin's own school code goes first on each).
TEMPLATE_ROWS = (("h-yamada", "山田 花子", "5", "2", "児童"),
                 ("t-suzuki", "鈴木 一郎", "", "", "教員"))


@bp.get("/roster/template.csv")
@admin_required
def roster_template(actor: Actor):
    """An example roster to fill in: UTF-8 with a BOM (Excel then opens it as UTF-8, not as
    Shift_JIS) and CRLF line ends, the Japanese headers the import reads."""
    if not may(actor, Action.ROSTER, actor.school_id):
        raise Forbidden("roster")
    school_code = "S0001"
    if actor.school_id:
        with services().db.session() as db:
            school = db.get(School, actor.school_id)
            school_code = school.code if school else school_code
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([JAPANESE_COLUMNS[name] for name in FIELDS])
    writer.writerows((school_code, *row) for row in TEMPLATE_ROWS)
    return Response("\ufeff" + buffer.getvalue(), headers={
        "Content-Disposition": "attachment; filename=roster-template.csv"},
        content_type="text/csv; charset=utf-8")


def _export_choices() -> list[tuple[str, str]]:
    """The apps a bundle may go to: enabled, and allowed the names and classes it holds."""
    with services().db.session() as db:
        clients = db.query(Client).filter(Client.enabled.is_(True)).order_by(Client.name)
        return [(c.client_id, c.name) for c in clients
                if all(scope in (c.scopes or []) for scope in NEEDED_SCOPES)]


def _roster_page(actor: Actor, status: int, **context):
    export_form = context.pop("export_form", None) or RosterExportForm()
    export_form.client_id.choices = _export_choices()
    return render("admin/roster.html", actor, status, export_form=export_form, **context)


@bp.post("/roster/export")
@admin_required
def roster_export(actor: Actor):
    if not may(actor, Action.ROSTER, actor.school_id):
        raise Forbidden("roster")
    form = RosterExportForm()
    if not form.validate_on_submit():
        return _roster_page(actor, 400, form=RosterUploadForm(), export_form=form)
    svc = services()
    try:
        with svc.db.session() as db:
            export = export_bundle(db, actor, client_id=form.client_id.data,
                                   school_code=(form.school_code.data or "").strip() or None,
                                   pairwise_secret=svc.settings.pairwise_secret)
    except (AdminInputError, NotFound) as exc:
        why = describe(exc.code, "") if isinstance(exc, AdminInputError) else _("見つかりません。")
        return _roster_page(actor, 400 if isinstance(exc, AdminInputError) else 404,
                            form=RosterUploadForm(), export_form=form,
                            export_error=_("書き出せません: %(why)s", why=why))
    return Response(export.data, mimetype="application/zip", headers={
        "Content-Disposition": f"attachment; filename={export.filename}",
        "Cache-Control": "no-store"})
