"""The admin page of one account's guardian links (``/admin/accounts/<id>/guardians``): for a
pupil, the guardians who may act for them; for a guardian, their children. Link by the other
account's login id in the same school; end a link with one button."""

from __future__ import annotations

from flask import abort, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from idp.accounts import guardians
from idp.accounts.roles import GUARDIAN, Action, Actor, require
from idp.admin import accounts
from idp.admin.forms import ActionForm
from idp.admin.views import bp, render
from idp.admin.web_auth import admin_required
from idp.japan_time import japan_today
from idp.services import services
from idp.store.models import Account

ERRORS = {
    "not_guardian": _l("おうちの人のアカウント(役割 guardian)を指定してください。"),
    "not_child": _l("子どもには、児童・生徒のアカウントだけをつなげます。"),
    "already_linked": _l("すでにつながっています。"),
    "unknown_login": _l("この学校に、そのIDのアカウントはありません。"),
    "invalid_birth_date": _l("生年月日は、今日までの日付を YYYY-MM-DD で入れてください。"),
    "invalid_age": _l("年齢は 0 から 20 までの数で入れてください(0 は確認なし)。"),
}


def _page(actor: Actor, row: Account, status: int = 200, error: str | None = None):
    with services().db.session() as db:
        links = guardians.links_in(db, actor, school_id=None, account_id=row.id)
    return render("admin/guardians.html", actor, status, row=row, links=links,
                  form=ActionForm(), error=error)


@bp.get("/accounts/<account_id>/guardians")
@admin_required
def account_guardians(actor: Actor, account_id: str):
    with services().db.session() as db:
        row = accounts.load_account(db, actor, account_id, Action.GUARDIANS)
    return _page(actor, row)


@bp.post("/accounts/<account_id>/guardians")
@admin_required
def account_guardian_link(actor: Actor, account_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    other_login = request.form.get("login_id", "").strip()[:64]
    with services().db.session() as db:
        row = accounts.load_account(db, actor, account_id, Action.GUARDIANS)
        other = db.scalar(select(Account).where(
            Account.school_id == row.school_id,
            func.lower(Account.login_id) == other_login.lower())) if other_login else None
        if other is None:
            return _page(actor, row, 400, ERRORS["unknown_login"])
        other = accounts.load_account(db, actor, other.id, Action.GUARDIANS)
        guardian, child = (row, other) if row.role == GUARDIAN else (other, row)
        try:
            guardians.link(db, actor, guardian, child)
        except guardians.GuardianError as exc:
            db.rollback()
            return _page(actor, row, 400, str(ERRORS.get(exc.code, exc.code)))
    return redirect(url_for("admin.account_guardians", account_id=account_id), 303)


@bp.post("/accounts/<account_id>/birth-date")
@admin_required
def account_birth_date(actor: Actor, account_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    with services().db.session() as db:
        row = accounts.load_account(db, actor, account_id)
        try:
            value = guardians.parse_birth_date(request.form.get("birth_date", "").strip(),
                                               japan_today())
        except guardians.GuardianError as exc:
            return _page(actor, row, 400, str(ERRORS[exc.code]))
        guardians.set_birth_date(db, actor, row, value)
    return redirect(url_for("admin.account_guardians", account_id=account_id), 303)


@bp.route("/schools/<school_code>/guardian-age", methods=["GET", "POST"])
@admin_required
def school_guardian_age(actor: Actor, school_code: str):
    form, error, status = ActionForm(), None, 200
    with services().db.session() as db:
        school = accounts.school_by_code(db, school_code[:64])
        if school is None:
            raise accounts.NotFound("no such school")
        require(actor, Action.GUARDIANS, school.id)
        if request.method == "POST":
            raw = request.form.get("under", "").strip()
            if not form.validate_on_submit():
                abort(400)
            try:
                guardians.set_consent_age(db, actor, school,
                                          int(raw) if raw.isdigit() and len(raw) < 4 else raw)
            except guardians.GuardianError as exc:
                db.rollback()
                error, status = str(ERRORS[exc.code]), 400
            else:
                return redirect(url_for("admin.school_guardian_age", school_code=school.code),
                                303)
        return render("admin/guardian_age.html", actor, status, school=school, form=form,
                      error=error)


@bp.post("/accounts/<account_id>/guardians/<link_id>/unlink")
@admin_required
def account_guardian_unlink(actor: Actor, account_id: str, link_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    with services().db.session() as db:
        link = guardians.load_link(db, actor, link_id)
        if link is None or account_id not in (link.guardian_id, link.child_id):
            abort(404)
        guardians.unlink(db, actor, link)
    return redirect(url_for("admin.account_guardians", account_id=account_id), 303)
