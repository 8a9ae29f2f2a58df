"""The admin pages' blueprint (``/admin``) and what every section's views share: the page
renderer, the safe ``next`` target, the once-shown secrets, the error pages.

Each section's views live in ``idp/admin/<section>_views.py`` and add their routes to
:data:`bp`; :data:`SECTIONS` lists them, and the end of this module imports them all, so the
blueprint has every route when ``app.BLUEPRINTS`` registers it. A new admin page: a
``<section>_views.py`` added to SECTIONS.
"""

from __future__ import annotations

import importlib
from typing import Any

from flask import Blueprint, jsonify, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from idp.accounts.roles import ADMIN_ROLES, STAFF_ROLES, Action, Actor, Forbidden, may
from idp.admin import accounts, messages
from idp.admin.messages import describe
from idp.admin.sheets import SheetFontMissing
from idp.japan_time import japan_date, japan_minute
from idp.signin.current import current_user

bp = Blueprint("admin", __name__, url_prefix="/admin")

# The modules whose routes join ``bp`` (idp/admin/<name>.py), in the order of the menu.
SECTIONS = ("login_views", "card_login_views", "home_views", "clients_views", "iat_views",
            "schools_views", "accounts_views",
            "cards_views", "link_views", "roster_views", "school_year_views",
            "audit_views", "settings_views", "api_tokens_views", "transfers_views",
            "guardian_views")


@bp.context_processor
def _admin_words() -> dict[str, Any]:
    # Times: the stored naive UTC, shown as the Japan day or minute (never strftime on UTC).
    return {"describe": describe, "role_name": messages.role_name,
            "event_name": messages.event_name, "method_name": messages.method_name,
            "outcome_name": messages.outcome_name, "reason_name": messages.reason_name,
            "class_words": messages.class_words, "japan_date": japan_date,
            "japan_minute": japan_minute}


def client_ip() -> str:
    return request.remote_addr or "unknown"


def show_once(label: str, value: str) -> None:
    """A secret for the very next page only (it is popped when rendered)."""
    session["admin_shown"] = {"label": label, "value": value}


def show_also(label: str, value: str) -> None:
    """A second secret for the same next page (a new staff account's enrolment code)."""
    session["admin_shown_also"] = {"label": label, "value": value}


def render(template: str, actor: Actor | None, status: int = 200, **context: Any):
    shown = session.pop("admin_shown", None)
    shown_also = session.pop("admin_shown_also", None)
    return render_template(template, actor=actor, shown=shown, shown_also=shown_also,
                           may=may, Action=Action, STAFF_ROLES=STAFF_ROLES,
                           **context), status


def safe_next(raw: str | None) -> str:
    """Only a path on the admin pages (never another host: no open redirect after login)."""
    if raw and raw.startswith("/admin") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return url_for("admin.home")


def admin_error(status: int, message: str):
    """An admin page's refusal in the admin's words, with the way back that fits who is
    signed in (a teacher to the card linking, which is all they may use). Not the student
    pages' error, whose words are for a child and whose detail is werkzeug's English."""
    if request.is_json or request.accept_mimetypes.best == "application/json":
        return jsonify(error="forbidden" if status == 403 else "not_found",
                       error_description=message), status
    user = current_user()
    role = user.account.role if user is not None else None
    if role in ADMIN_ROLES:
        back = (url_for("admin.home"), _("管理トップにもどる"))
    elif role in STAFF_ROLES:
        back = (url_for("admin.link_roster"), _("「カードをつなぐ」にもどる"))
    else:
        back = (url_for("admin.login"), _("管理者のサインインへ"))
    return render_template("admin/error.html", status=status, message=message,
                           back_url=back[0], back_label=back[1]), status


@bp.errorhandler(Forbidden)
@bp.errorhandler(403)
def _forbidden(exc: Exception):
    return admin_error(403, _("このページや操作は、あなたの役割では使えません。"
                              "必要なときは、学校の管理者にたのんでください。"))


@bp.errorhandler(accounts.NotFound)
@bp.errorhandler(404)
def _not_found(exc: Exception):
    # A view's own Japanese reason (abort(404, description=...)) beats the generic words.
    own = isinstance(exc, HTTPException) and exc.description != type(exc).description
    return admin_error(404, str(exc.description) if own else _(
        "見つかりません。消されたか、アドレスがまちがっています。一覧から選びなおしてください。"))


@bp.errorhandler(SheetFontMissing)
def _no_sheet_font(exc: SheetFontMissing):
    # The server lacks the Japanese font the slips embed (docs/admin-guide.md): nothing was
    # changed (the unit of work rolled back), and the person who can fix it is told what.
    return render_template("error.html", error="503", http_error=True, description=_(
        "用紙(PDF)を作れません: サーバーに日本語フォントがありません。システムの担当者に"
        "「fonts-ipaexfont-gothic を入れてください」と伝えてください。")), 503


# ----------------------------------------------------------------------------- wiring
# The sections add their routes to ``bp``: imported last, once ``bp`` and the helpers above
# exist (app.BLUEPRINTS registers it).
for _section in SECTIONS:
    importlib.import_module(f"idp.admin.{_section}")
