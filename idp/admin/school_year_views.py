"""The school year page, ``/admin/school-year``: preview the year-end promotion (with an
optional class roster), apply it, and see the graduates whose grace period is over. Rules
live in :mod:`idp.admin.school_year` and :mod:`idp.accounts.lifecycle`."""

from __future__ import annotations

from flask import abort
from flask_babel import gettext as _

from idp.accounts import lifecycle
from idp.accounts.roles import Action, Actor, Forbidden, may
from idp.admin import accounts, school_year
from idp.admin.forms import PromotionApplyForm, PromotionUploadForm, YearSettingsForm
from idp.admin.messages import describe
from idp.admin.roster import RosterFileError
from idp.admin.views import bp, render
from idp.admin.web_auth import admin_required
from idp.japan_time import japan_date
from idp.services import services
from idp.store.models import utcnow

MAX_ROSTER_BYTES = 900 * 1024


def _upload_form(db, actor: Actor) -> PromotionUploadForm:
    form = PromotionUploadForm()
    schools = [s for s in accounts.list_schools(db, actor)
               if may(actor, Action.SCHOOL_YEAR, s.id)]
    form.school.choices = [(s.code, f"{s.name} ({s.code})") for s in schools]
    return form


def _page(db, actor: Actor, form: PromotionUploadForm, status: int = 200, **context):
    due = [(a, ends) for a, ends in lifecycle.due_for_deactivation(db, utcnow())
           if may(actor, Action.SCHOOL_YEAR, a.school_id)]
    settings = [(school, YearSettingsForm(school=school.code, top_grade=school.top_grade,
                                          grace_days=school.graduate_grace_days,
                                          formdata=None))
                for school in accounts.list_schools(db, actor)
                if may(actor, Action.SCHOOL_YEAR, school.id)]
    return render("admin/school_year.html", actor, status, form=form, due=due,
                  japan_date=japan_date, settings=settings, **context)


@bp.route("/school-year", methods=["GET", "POST"])
@admin_required
def school_year_page(actor: Actor):
    if not may(actor, Action.SCHOOL_YEAR, actor.school_id):
        raise Forbidden("school_year")
    svc = services()
    with svc.db.session() as db:
        form = _upload_form(db, actor)
        if not form.is_submitted():
            return _page(db, actor, form)
        if not form.validate():
            return _page(db, actor, form, 400)
        school = accounts.school_by_code(db, form.school.data)
        data = form.file.data.read(MAX_ROSTER_BYTES + 1) if form.file.data else b""
        if school is None or len(data) > MAX_ROSTER_BYTES:
            return _page(db, actor, form, 400, error=_("ファイルが大きすぎます(900KBまで)。"))
        try:
            plan, assignments = school_year.preview(db, actor, school, data or None)
        except RosterFileError as exc:
            return _page(db, actor, form, 400, error=_("ファイルを読めません: %(why)s",
                                                         why=describe(exc.code, str(exc))))
        apply_form = None
        if plan.valid:
            school_year.stash_preview(svc.store, plan, assignments)
            apply_form = PromotionApplyForm(preview_token=plan.token, school=school.code)
        return render("admin/school_year_preview.html", actor, 200 if plan.valid else 422,
                      plan=plan, school=school, apply_form=apply_form)


@bp.post("/school-year/apply")
@admin_required
def school_year_apply(actor: Actor):
    form = PromotionApplyForm()
    if not form.validate_on_submit():
        abort(400)
    svc = services()
    with svc.db.session() as db:
        school = accounts.school_by_code(db, form.school.data)
        if school is None:
            abort(404)
        if not may(actor, Action.SCHOOL_YEAR, school.id):
            raise Forbidden("school_year")
        try:
            applied = school_year.apply_preview(svc.store, db, actor, form.preview_token.data,
                                                school_id=school.id)
        except school_year.PromotionError as exc:
            db.rollback()
            return _page(db, actor, _upload_form(db, actor), 409,
                         error=describe(exc.code))
        return render("admin/school_year_done.html", actor, plan=applied.plan,
                      school=school, batch_id=applied.batch_id)


@bp.post("/school-year/settings")
@admin_required
def school_year_settings(actor: Actor):
    form = YearSettingsForm()
    with services().db.session() as db:
        if not form.validate_on_submit():
            return _page(db, actor, _upload_form(db, actor), 400,
                         error=_("学年は1から12、日数は0から730で入れてください。"))
        school = accounts.school_by_code(db, form.school.data)
        if school is None:
            abort(404)
        if not may(actor, Action.SCHOOL_YEAR, school.id):
            raise Forbidden("school_year")
        school_year.set_year_settings(db, actor, school, top_grade=form.top_grade.data,
                                      grace_days=form.grace_days.data)
        return _page(db, actor, _upload_form(db, actor), saved=school.code)
