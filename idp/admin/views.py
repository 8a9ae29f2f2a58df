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

from flask import Blueprint, render_template, request, session, url_for
from flask_babel import gettext as _

from idp.accounts.roles import STAFF_ROLES, Action, Actor, Forbidden, may
from idp.admin import accounts, messages
from idp.admin.messages import describe
from idp.admin.sheets import SheetFontMissing

bp = Blueprint("admin", __name__, url_prefix="/admin")

# The modules whose routes join ``bp`` (idp/admin/<name>.py), in the order of the menu.
SECTIONS = ("login_views", "card_login_views", "home_views", "clients_views", "iat_views",
            "schools_views", "accounts_views",
            "cards_views", "link_views", "roster_views", "school_year_views",
            "audit_views", "settings_views", "api_tokens_views", "transfers_views",
            "guardian_views")


@bp.context_processor
def _admin_words() -> dict[str, Any]:
    return {"describe": describe, "role_name": messages.role_name,
            "event_name": messages.event_name, "method_name": messages.method_name,
            "outcome_name": messages.outcome_name, "reason_name": messages.reason_name}


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


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden):
    return render_template("error.html", error="403", http_error=True,
                           description=_("この操作をする権限がありません。")), 403


@bp.errorhandler(accounts.NotFound)
def _not_found(exc: accounts.NotFound):
    return render_template("error.html", error="404", http_error=True,
                           description=_("見つかりません。")), 404


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
