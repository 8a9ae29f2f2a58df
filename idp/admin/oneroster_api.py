"""``GET /api/admin/roster/export``: a school's OneRoster bundle for one app (rules in
:mod:`idp.admin.oneroster_export`), and a JSON answer to an upload over the size limit.
Imported at the end of :mod:`idp.admin.api`, whose blueprint it adds to."""

from __future__ import annotations

from flask import Response, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from idp.accounts.roles import Actor
from idp.admin.api import ApiError, _error, _str_arg, api_route, bp
from idp.admin.oneroster_export import export_bundle
from idp.services import services


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge):
    return _error(413, "too_large", "the upload is larger than the provider accepts (1 MiB)")


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
