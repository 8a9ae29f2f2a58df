"""The school year in the admin API: the year-end promotion (preview, then apply by the
preview's token) and the graduates' lifecycle run. Same bearer tokens and errors as
:mod:`idp.admin.api` (whose blueprint these routes join)."""

from __future__ import annotations

from flask import request
from sqlalchemy.orm import Session

from idp.accounts import lifecycle
from idp.accounts.roles import Action, Actor, require
from idp.admin import accounts, school_year
from idp.admin.api import ApiError, _bool_arg, _json_object, api_route
from idp.admin.roster import RosterFileError
from idp.services import services
from idp.signin.sessions import end_account_sessions
from idp.store.models import School, iso_utc

APPLY_STATUS = {"already_applied": 409, "stale_preview": 409, "preview_expired": 410,
                "invalid_roster": 422, "invalid_request": 400}


def _school(db: Session, code: str) -> School:
    school = accounts.school_by_code(db, code[:64])
    if school is None:
        raise ApiError(404, "not_found", "no such school")
    return school


def _optional_roster() -> bytes | None:
    upload = request.files.get("file")
    data = upload.read() if upload is not None else request.get_data(cache=False)
    return data or None


@api_route("/schools/<code>/promotion/preview", ["POST"])
def promotion_preview(db: Session, actor: Actor, code: str):
    school = _school(db, code)
    try:
        plan, assignments = school_year.preview(db, actor, school, _optional_roster())
    except RosterFileError as exc:
        raise ApiError(400, exc.code, str(exc)) from exc
    if plan.valid:
        school_year.stash_preview(services().store, plan, assignments)
    return school_year.plan_view(plan)


@api_route("/schools/<code>/promotion/apply", ["POST"])
def promotion_apply(db: Session, actor: Actor, code: str):
    school = _school(db, code)
    require(actor, Action.SCHOOL_YEAR, school.id)
    token = _json_object().get("preview_token")
    try:
        applied = school_year.apply_preview(services().store, db, actor,
                                            token if isinstance(token, str) else "",
                                            school_id=school.id)
    except school_year.PromotionError as exc:
        raise ApiError(APPLY_STATUS.get(exc.code, 400), exc.code, str(exc)) from exc
    return {"batch_id": applied.batch_id, "applied": True,
            **school_year.plan_view(applied.plan)}


@api_route("/schools/<code>/lifecycle/run", ["POST"])
def lifecycle_run(db: Session, actor: Actor, code: str):
    school = _school(db, code)
    require(actor, Action.SCHOOL_YEAR, school.id)
    store = services().store
    done = lifecycle.run(db, end_sessions=lambda account_id: end_account_sessions(
        store, account_id), school_id=school.id, dry_run=_bool_arg("dry_run"),
        actor=actor.account_id)
    return {"dry_run": _bool_arg("dry_run"), "deactivated": [
        {"account_id": a.account_id, "login_id": a.login_id,
         "graduated_at": iso_utc(a.graduated_at), "access_ended": iso_utc(a.access_ended),
         "removed": a.removed} for a in done]}


@api_route("/schools/<code>/school-year", ["PUT"])
def put_year_settings(db: Session, actor: Actor, code: str):
    school = _school(db, code)
    body = _json_object()
    try:
        school_year.set_year_settings(db, actor, school, top_grade=body.get("top_grade"),
                                      grace_days=body.get("graduate_grace_days"))
    except school_year.PromotionError as exc:
        raise ApiError(400, exc.code, str(exc)) from exc
    return school_year.year_settings_view(school)
