"""The admin API's guardian endpoints (on the same ``/api/admin`` blueprint as
:mod:`idp.admin.api`): link a guardian account to a pupil, list and end links, a pupil's
birth date and the school's guardian-consent age. Imported by :mod:`idp.app`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from idp.accounts import guardians
from idp.accounts.roles import Action, Actor, require
from idp.admin import accounts
from idp.admin.api import ApiError, _error, _json_object, _school_id_arg, _str_arg, api_route, bp
from idp.japan_time import japan_today


@bp.errorhandler(guardians.GuardianError)
def _bad_link(exc: guardians.GuardianError):
    return _error(409 if exc.code == "already_linked" else 400, exc.code, str(exc))


def _id_field(data: dict, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value or len(value) > 32:
        raise ApiError(400, "invalid_request", f"{name} is an account id (a string)")
    return value


@api_route("/guardian-links", ["POST"])
def create_guardian_link(db: Session, actor: Actor):
    data = _json_object()
    guardian = accounts.load_account(db, actor, _id_field(data, "guardian_id"),
                                     Action.GUARDIANS)
    child = accounts.load_account(db, actor, _id_field(data, "child_id"), Action.GUARDIANS)
    row = guardians.link(db, actor, guardian, child)
    return guardians.link_view(guardians.LinkView(row, guardian, child)), 201


@api_route("/guardian-links", ["GET"])
def list_guardian_links(db: Session, actor: Actor):
    account_id = _str_arg("account_id", 32)
    views = guardians.links_in(db, actor, school_id=_school_id_arg(db), account_id=account_id)
    return {"links": [guardians.link_view(v) for v in views]}


@api_route("/guardian-links/<link_id>", ["DELETE"])
def delete_guardian_link(db: Session, actor: Actor, link_id: str):
    row = guardians.load_link(db, actor, link_id)
    if row is None:
        raise ApiError(404, "not_found", "no such guardian link")
    guardians.unlink(db, actor, row)
    return None, 204


@api_route("/accounts/<account_id>/birth-date", ["PUT"])
def put_birth_date(db: Session, actor: Actor, account_id: str):
    row = accounts.load_account(db, actor, account_id)
    value = guardians.parse_birth_date(_json_object().get("birth_date"),
                                       japan_today())
    guardians.set_birth_date(db, actor, row, value)
    return {"account_id": row.id, "birth_date": value.isoformat() if value else None}


@api_route("/schools/<school_code>/guardian-consent-age", ["PUT"])
def put_guardian_consent_age(db: Session, actor: Actor, school_code: str):
    school = accounts.school_by_code(db, school_code[:64])
    if school is None:
        raise ApiError(404, "not_found", "no such school")
    require(actor, Action.GUARDIANS, school.id)
    under = guardians.set_consent_age(db, actor, school, _json_object().get("under"))
    return {"school_code": school.code, "guardian_consent_age": under}
