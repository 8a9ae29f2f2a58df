"""Applying a roster to the database: preview (plan only) and import (all or nothing).

New accounts get a generated first password; the clear passwords are kept only in the
short-lived store, for the importing admin, long enough to print the per-class sheets.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from idp.accounts import guardians, lifecycle
from idp.accounts.access import revoke_account_tokens
from idp.accounts.roles import Action, Actor, Forbidden, may
from idp.admin import oneroster, roster_agents
from idp.admin.roster import (
    ExistingAccount,
    ParsedRoster,
    PreviewRow,
    RosterFileError,
    RosterPlan,
    RowError,
    parse,
    plan_import,
    preview_rows,
)
from idp.audit import audit
from idp.signin.passwords import generate_first_password, hash_password
from idp.signin.sessions import end_account_sessions
from idp.store.models import Account, GuardianLink, School

SHEET_TTL = 30 * 60  # the clear first passwords live this long, then only their hashes
FORMATS = ("csv", "oneroster")


@dataclass
class ImportResult:
    plan: RosterPlan
    applied: bool
    sheet_id: str | None = None
    created: list[dict[str, str]] = field(default_factory=list)


def build_plan(db: Session, actor: Actor, parsed: ParsedRoster, *, deactivate_missing: bool
               ) -> RosterPlan:
    if not (actor.is_platform_admin or may(actor, Action.ROSTER, actor.school_id)):
        raise Forbidden("not allowed to import rosters")
    if parsed.mode == "delta" and deactivate_missing:
        # A delta carries only the changes: everyone not in it would be "missing".
        raise RosterFileError("delta_deactivate", "a delta bundle cannot deactivate the "
                              "people it does not list; send a bulk bundle for that")
    codes = {row.school_code for row in parsed.rows if not row.remove}
    schools = {s.code: s.id for s in db.scalars(select(School).where(School.code.in_(codes)))} \
        if codes else {}
    removed = {row.sourced_id for row in parsed.rows if row.remove}
    allowed = None if actor.is_platform_admin else {actor.school_id}
    wanted = [Account.school_id.in_(set(schools.values()))] if schools else []
    if removed:
        wanted.append(Account.sourced_id.in_(removed))
    existing = [
        ExistingAccount(a.id, a.school_id, a.login_id, a.display_name or "", a.grade or "",
                        a.class_name or "", a.role, a.active, a.sourced_id or "",
                        a.kana_family_name or "", a.kana_given_name or "",
                        a.student_number or "",
                        a.birth_date.isoformat() if a.birth_date else "")
        for a in db.scalars(select(Account).where(or_(*wanted)))
    ] if wanted else []
    plan = plan_import(parsed, school_ids=schools, allowed_school_ids=allowed,
                       existing=existing, deactivate_missing=deactivate_missing)
    if parsed.mode != "csv":
        roster_agents.plan_links(plan, parsed, school_ids=schools, allowed_school_ids=allowed,
                                 existing=existing,
                                 links=_links_in(db, set(schools.values())))
    return plan


def _links_in(db: Session, school_ids: set[str]) -> list[roster_agents.ExistingLink]:
    """The guardian links whose child is in one of these schools."""
    if not school_ids:
        return []
    guardian, child = aliased(Account), aliased(Account)
    rows = db.execute(select(GuardianLink, child.school_id, guardian.school_id)
                      .join(child, child.id == GuardianLink.child_id)
                      .join(guardian, guardian.id == GuardianLink.guardian_id)
                      .where(child.school_id.in_(school_ids))).all()
    return [roster_agents.ExistingLink(link.id, link.guardian_id, link.child_id, link.origin,
                                       child_school, guardian_school)
            for link, child_school, guardian_school in rows]


def parse_roster(data: bytes, file_format: str = "csv") -> ParsedRoster:
    """A CSV roster or a OneRoster bundle; raises :class:`RosterFileError`."""
    if file_format == "oneroster":
        return oneroster.parse_bundle(data)
    if file_format == "csv":
        return parse(data)
    raise RosterFileError("bad_format", "format must be csv or oneroster")


def preview(db: Session, actor: Actor, data: bytes, *, deactivate_missing: bool,
            file_format: str = "csv") -> RosterPlan:
    """Raises :class:`idp.admin.roster.RosterFileError` for an unreadable file."""
    return build_plan(db, actor, parse_roster(data, file_format),
                      deactivate_missing=deactivate_missing)


def import_roster(svc, db: Session, actor: Actor, data: bytes, *, deactivate_missing: bool,
                  file_format: str = "csv") -> ImportResult:
    """Plan again against the database as it is now, and write the whole plan or nothing.

    The caller's unit of work commits; any error raised here rolls everything back."""
    plan = preview(db, actor, data, deactivate_missing=deactivate_missing,
                   file_format=file_format)
    if not plan.valid:
        return ImportResult(plan, applied=False)
    schools = {s.id: s for s in db.scalars(select(School))}
    code_to_id = {s.code: s.id for s in schools.values()}
    created: list[dict[str, str]] = []
    for row in plan.creates:
        password = generate_first_password()
        school_id = code_to_id[row.school_code]
        account = Account(school_id=school_id, login_id=row.login_id,
                          display_name=row.display_name, grade=row.grade,
                          class_name=row.class_name, role=row.role,
                          sourced_id=row.sourced_id or None,
                          kana_family_name=row.kana_family_name,
                          kana_given_name=row.kana_given_name,
                          student_number=row.student_number,
                          birth_date=_date_or_none(row.birth_date),
                          password_hash=hash_password(password), must_change_password=True)
        db.add(account)
        db.flush()
        audit(db, "account.created", actor=actor.account_id, account_id=account.id,
              school_id=school_id, via="roster")
        created.append({"school_code": row.school_code, "school_name": schools[school_id].name,
                        "grade": row.grade, "class_name": row.class_name, "role": row.role,
                        "login_id": row.login_id, "display_name": row.display_name,
                        "kana_family_name": row.kana_family_name,
                        "kana_given_name": row.kana_given_name,
                        "student_number": row.student_number, "password": password})
    for row, current, changed in plan.updates:
        account = db.get(Account, current.id)
        for name in changed:
            if name == "birth_date":
                account.birth_date = _date_or_none(row.birth_date)
            elif name != "active":
                setattr(account, name, getattr(row, name))
        account.active = True
        if account.status == lifecycle.DEACTIVATED:  # listed again: back at school
            account.status = lifecycle.ACTIVE
        audit(db, "account.updated", actor=actor.account_id, account_id=account.id,
              school_id=account.school_id, via="roster", fields=changed)
    for current in plan.deactivations:
        account = db.get(Account, current.id)
        account.active = False
        account.status = lifecycle.DEACTIVATED
        end_account_sessions(svc.store, account.id)
        revoke_account_tokens(db, account.id, "account_deactivated", actor=actor.account_id)
        audit(db, "account.deactivated", actor=actor.account_id, account_id=account.id,
              school_id=account.school_id, via="roster")
    _apply_links(db, actor, plan)
    for school_id in sorted({code_to_id[r.school_code] for r in plan.creates + plan.unchanged
                             if r.school_code in code_to_id}
                            | {c.school_id for _, c, _ in plan.updates}
                            | {c.school_id for c in plan.deactivations}):
        audit(db, "roster.imported", actor=actor.account_id, school_id=school_id,
              format=file_format, **plan.summary())
    result = ImportResult(plan, applied=True, created=created)
    if created:
        result.sheet_id = secrets.token_urlsafe(16)
        svc.store.put(f"roster-sheet:{result.sheet_id}",
                      {"actor": actor.account_id, "entries": created}, SHEET_TTL)
    return result


def _apply_links(db: Session, actor: Actor, plan: RosterPlan) -> None:
    """The planned guardian links, through the guardians service (its pair rule and audit),
    after the accounts they name exist."""
    db.flush()
    for planned in plan.links:
        guardian = _by_sourced_id(db, planned.school_id, planned.guardian_sourced_id)
        child = _by_sourced_id(db, planned.school_id, planned.child_sourced_id)
        guardians.link(db, actor, guardian, child, origin=roster_agents.ROSTER_ORIGIN)
    for planned in plan.unlinks:
        row = db.get(GuardianLink, planned.link_id)
        if row is not None:
            guardians.unlink(db, actor, row, via="roster")


def _by_sourced_id(db: Session, school_id: str, sourced_id: str) -> Account:
    return db.scalars(select(Account).where(Account.school_id == school_id,
                                            Account.sourced_id == sourced_id)).one()


def preview_table(db: Session, plan: RosterPlan) -> list[PreviewRow]:
    """Every row as the import will write it (for the preview page)."""
    ids = {a.school_id for a in plan.deactivations}
    codes = {s.id: s.code for s in db.scalars(select(School).where(School.id.in_(ids)))} \
        if ids else {}
    return preview_rows(plan, codes)


def load_sheet(svc, actor: Actor, sheet_id: str) -> list[dict[str, str]] | None:
    """The first passwords of an import, only for the admin who ran it, while they last."""
    if not sheet_id or len(sheet_id) > 64:
        return None
    data = svc.store.get(f"roster-sheet:{sheet_id}")
    if not data or data.get("actor") != actor.account_id:
        return None
    return data["entries"]


def discard_sheet(svc, sheet_id: str) -> None:
    svc.store.delete(f"roster-sheet:{sheet_id}")


def plan_view(plan: RosterPlan) -> dict[str, Any]:
    """The plan as JSON: counts, each row's fate, each error with its line."""
    return {
        "valid": plan.valid,
        "summary": plan.summary(),
        "errors": [_row_error_view(e, plan) for e in plan.errors],
        "skipped": [_row_error_view(e, plan) for e in plan.skipped],
        "create": [{"line": r.line, "school_code": r.school_code, "login_id": r.login_id}
                   for r in plan.creates],
        "update": [{"line": r.line, "login_id": r.login_id, "fields": changed}
                   for r, _, changed in plan.updates],
        "deactivate": [{"login_id": a.login_id, "account_id": a.id}
                       for a in plan.deactivations],
        **roster_agents.links_view(plan),
    }


def _row_error_view(error: RowError, plan: RosterPlan) -> dict[str, Any]:
    # "column": the field as the file's own header names it (「組」, "class", "username").
    view: dict[str, Any] = {"line": error.line, "code": error.code, "field": error.field,
                            "column": plan.column(error.field), "detail": error.detail}
    if error.file:
        view["file"] = error.file
    return view


def _date_or_none(value: str) -> date | None:
    return date.fromisoformat(value) if value else None
