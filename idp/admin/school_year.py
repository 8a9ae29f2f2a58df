"""The year-end promotion as one previewed batch. Flask-free.

Every active pupil of a school moves up one grade; a pupil in the school's top grade
becomes a graduate (:mod:`idp.accounts.lifecycle`). The new homeroom class comes from a
class roster: a CSV with the columns login id, grade and class — Mynagate's own roster file
(its other columns are ignored; a school code, when present, must be this school's) or just
``login_id,grade,class``. The roster's grade is a check: it must be the pupil's grade + 1.

:func:`preview` computes the whole plan and a token (a hash of exactly what would change);
:func:`apply` recomputes the plan and applies it in one transaction only if the token is
the same (nothing changed in between) and no batch with that token was applied before, so a
double click or a retried call promotes once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.accounts import lifecycle
from idp.accounts.roles import STUDENT, Action, Actor, require
from idp.admin.roster import (
    LOGIN_ID_RE,
    MAX_ROWS,
    RosterFileError,
    decode,
    header_map,
    normalized,
    school_class,
    school_grade,
)
from idp.audit import audit
from idp.store.models import Account, PromotionBatch, School, utcnow

PREVIEW_TTL = 60 * 60  # a preview can be applied for an hour; then preview again
PREVIEW_KEY = "promotion-preview:"


class PromotionError(Exception):
    """The promotion cannot be applied; ``code`` says why (API error codes)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ClassAssignment:
    line: int
    login_id: str
    grade: str
    class_name: str


@dataclass(frozen=True)
class Promotion:
    account_id: str
    login_id: str
    display_name: str
    grade_from: str
    grade_to: str
    class_from: str
    class_to: str
    class_from_roster: bool  # False: no roster row, the class stays as it was


@dataclass(frozen=True)
class Graduation:
    account_id: str
    login_id: str
    display_name: str
    grade: str
    class_name: str


@dataclass(frozen=True)
class Problem:
    code: str  # bad_row, duplicate, unknown_login, other_school, grade_mismatch, graduating,
    # not_a_number
    login_id: str = ""
    line: int | None = None
    detail: str = ""


@dataclass
class PromotionPlan:
    school_id: str
    school_code: str
    top_grade: int
    promotions: list[Promotion] = field(default_factory=list)
    graduations: list[Graduation] = field(default_factory=list)
    # The roster's own problems: the plan is not applied while there is any.
    errors: list[Problem] = field(default_factory=list)
    # Pupils left as they are (their grade is not a number): listed, not blocking.
    skipped: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def token(self) -> str:
        """A hash of exactly what would change (and from what), so an apply with it changes
        only what the admin saw."""
        body = json.dumps({"school": self.school_id,
                           "promote": [asdict(p) for p in self.promotions],
                           "graduate": [asdict(g) for g in self.graduations]},
                          sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(body.encode()).hexdigest()

    def summary(self) -> dict[str, int]:
        return {"promote": len(self.promotions), "graduate": len(self.graduations),
                "skipped": len(self.skipped), "errors": len(self.errors)}


# ----------------------------------------------------------------------------- the roster
def _columns(header: list[str]) -> dict[str, int]:
    return header_map(header, ("login_id", "grade", "class_name"))


def parse_class_roster(data: bytes, school_code: str
                       ) -> tuple[list[ClassAssignment], list[Problem]]:
    """Each row's new grade and class; rows of another school and malformed rows are
    problems (never silently dropped)."""
    text, _encoding = decode(data)
    if "\x00" in text:
        raise RosterFileError("bad_encoding", "the file contains NUL bytes: not a CSV")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[ClassAssignment] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    try:
        header = next(reader, None)
        if header is None:
            raise RosterFileError("empty", "the file is empty")
        columns = _columns(header)
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(rows) + len(problems) >= MAX_ROWS:
                raise RosterFileError("too_many_rows", f"at most {MAX_ROWS} rows per file")
            line = reader.line_num

            def cell(name: str, cells: list[str] = cells) -> str:
                index = columns.get(name)
                return normalized(cells[index]) if index is not None and index < len(cells) else ""

            login = cell("login_id")
            grade, klass = school_grade(cell("grade")), school_class(cell("class_name"))
            school = cell("school_code")
            if school and school != school_code:
                problems.append(Problem("other_school", login, line,
                                        f"school {school} is not {school_code}"))
            elif not LOGIN_ID_RE.match(login) or not grade or len(grade) > 16 \
                    or len(klass) > 32:
                problems.append(Problem("bad_row", login[:64], line,
                                        "login id, grade and class are needed"))
            elif login.lower() in seen:
                problems.append(Problem("duplicate", login, line,
                                        f"same login id as line {seen[login.lower()]}"))
            else:
                seen[login.lower()] = line
                rows.append(ClassAssignment(line, login, grade, klass))
    except csv.Error as exc:
        raise RosterFileError("bad_csv", f"line {reader.line_num}: {exc}") from exc
    return rows, problems


# ----------------------------------------------------------------------------- the plan
def _grade_number(grade: str) -> int | None:
    value = normalized(grade)
    return int(value) if value.isdigit() and len(value) <= 2 else None


def pupils(db: Session, school_id: str) -> list[Account]:
    """The school's active pupils (graduates and deactivated accounts are not promoted)."""
    return list(db.scalars(select(Account).where(
        Account.school_id == school_id, Account.role == STUDENT, Account.active.is_(True),
        Account.status == lifecycle.ACTIVE).order_by(Account.login_id)))


def _plan_pupil(plan: PromotionPlan, account: Account,
                assignment: ClassAssignment | None) -> None:
    number = _grade_number(account.grade)
    if number is None:
        plan.skipped.append(Problem("not_a_number", account.login_id, None,
                                    f"grade {account.grade!r} is not a number"))
    elif number >= plan.top_grade:
        plan.graduations.append(Graduation(account.id, account.login_id,
                                           account.display_name, account.grade,
                                           account.class_name))
        if assignment is not None:
            plan.errors.append(Problem("graduating", account.login_id, assignment.line,
                                       f"grade {number} is the top grade: this pupil "
                                       "graduates, so the row is not used"))
    elif assignment is not None and _grade_number(assignment.grade) != number + 1:
        plan.errors.append(Problem("grade_mismatch", account.login_id, assignment.line,
                                   f"the roster says grade {assignment.grade}, but grade "
                                   f"{number} moves up to {number + 1}"))
    else:
        klass = assignment.class_name if assignment else account.class_name
        plan.promotions.append(Promotion(account.id, account.login_id, account.display_name,
                                         account.grade, str(number + 1), account.class_name,
                                         klass, assignment is not None))


def build_plan(db: Session, school: School,
               assignments: list[ClassAssignment] | None,
               roster_problems: list[Problem] | None = None) -> PromotionPlan:
    plan = PromotionPlan(school.id, school.code, school.top_grade,
                         errors=list(roster_problems or []))
    by_login = {a.login_id.lower(): a for a in assignments or []}
    accounts = pupils(db, school.id)
    for account in accounts:
        _plan_pupil(plan, account, by_login.pop(account.login_id.lower(), None))
    for leftover in sorted(by_login.values(), key=lambda a: a.line):
        plan.errors.append(Problem("unknown_login", leftover.login_id, leftover.line,
                                   "no active pupil of this school has this login id"))
    plan.errors.sort(key=lambda p: (p.line or 0, p.login_id))
    return plan


def preview(db: Session, actor: Actor, school: School, roster: bytes | None
            ) -> tuple[PromotionPlan, list[ClassAssignment] | None]:
    """The plan, changing nothing (the dry run)."""
    require(actor, Action.SCHOOL_YEAR, school.id)
    assignments, problems = (parse_class_roster(roster, school.code) if roster
                             else (None, []))
    return build_plan(db, school, assignments, problems), assignments


# ----------------------------------------------------------------------------- applying
@dataclass(frozen=True)
class Applied:
    batch_id: str
    plan: PromotionPlan


def apply(db: Session, actor: Actor, school: School, token: str,
          assignments: list[ClassAssignment] | None, *,
          now: datetime | None = None) -> Applied:
    """Apply the plan the admin previewed, in the caller's transaction (all or nothing)."""
    require(actor, Action.SCHOOL_YEAR, school.id)
    if db.scalar(select(PromotionBatch.id).where(PromotionBatch.preview_token == token)):
        raise PromotionError("already_applied", "this preview was applied already")
    plan = build_plan(db, school, assignments)
    if not plan.valid:
        raise PromotionError("invalid_roster", "the roster has errors: see the preview")
    if plan.token != token:
        raise PromotionError("stale_preview", "the pupils changed since the preview: "
                             "preview again")
    batch = PromotionBatch(school_id=school.id, preview_token=token, actor=actor.account_id,
                           promoted=len(plan.promotions), graduated=len(plan.graduations))
    db.add(batch)
    try:
        db.flush()  # a concurrent apply of the same preview stops here
    except IntegrityError as exc:
        raise PromotionError("already_applied", "this preview was applied already") from exc
    moment = now or utcnow()
    for change in plan.promotions:
        account = db.get(Account, change.account_id)
        account.grade, account.class_name = change.grade_to, change.class_to
        audit(db, "account.promoted", actor=actor.account_id, account_id=account.id,
              school_id=school.id, batch=batch.id, grade_from=change.grade_from,
              grade_to=change.grade_to, class_from=change.class_from,
              class_to=change.class_to)
    for leaving in plan.graduations:
        lifecycle.graduate(db, db.get(Account, leaving.account_id), actor=actor.account_id,
                           now=moment, batch_id=batch.id)
    audit(db, "school.promoted", actor=actor.account_id, school_id=school.id,
          batch=batch.id, **plan.summary())
    return Applied(batch.id, plan)


# ----------------------------------------------------------------------------- the stash
def stash_preview(store: Any, plan: PromotionPlan,
                  assignments: list[ClassAssignment] | None) -> None:
    """Keep the previewed roster for :func:`apply_preview` (the admin page and API apply
    by token, without sending the file again)."""
    store.put(PREVIEW_KEY + plan.token, {
        "school_id": plan.school_id,
        "assignments": None if assignments is None else [asdict(a) for a in assignments]},
        PREVIEW_TTL)


def apply_preview(store: Any, db: Session, actor: Actor, token: str, *,
                  school_id: str) -> Applied:
    """Apply a stashed preview of ``school_id`` by its token."""
    if not isinstance(token, str) or not 0 < len(token) <= 64:
        raise PromotionError("invalid_request", "preview_token is required")
    stashed = store.get(PREVIEW_KEY + token)
    if stashed is None:
        if db.scalar(select(PromotionBatch.id).where(PromotionBatch.preview_token == token)):
            raise PromotionError("already_applied", "this preview was applied already")
        raise PromotionError("preview_expired", "no such preview (they last an hour): "
                             "preview again")
    if stashed["school_id"] != school_id:
        # Another school's preview: as if there were none (says nothing about it).
        raise PromotionError("preview_expired", "no such preview for this school")
    school = db.get(School, school_id)
    raw = stashed["assignments"]
    assignments = None if raw is None else [ClassAssignment(**a) for a in raw]
    return apply(db, actor, school, token, assignments)


def plan_view(plan: PromotionPlan) -> dict[str, Any]:
    """The plan as JSON (the API and the CLI's --json)."""
    return {
        "school_code": plan.school_code, "top_grade": plan.top_grade,
        "valid": plan.valid, "preview_token": plan.token, "summary": plan.summary(),
        "promote": [asdict(p) for p in plan.promotions],
        "graduate": [asdict(g) for g in plan.graduations],
        "skipped": [asdict(p) for p in plan.skipped],
        "errors": [asdict(p) for p in plan.errors],
    }


TOP_GRADES = range(1, 13)  # 6 for an elementary school, 3 for a junior high, 12 for 小中一貫
GRACE_DAYS = range(0, 731)  # up to two years after graduating


def set_year_settings(db: Session, actor: Actor, school: School, *, top_grade: Any = None,
                      grace_days: Any = None) -> School:
    """Change the school's top grade and graduates' grace period (either or both)."""
    require(actor, Action.SCHOOL_YEAR, school.id)
    changes: dict[str, int] = {}
    for name, value, allowed in (("top_grade", top_grade, TOP_GRADES),
                                 ("graduate_grace_days", grace_days, GRACE_DAYS)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
            raise PromotionError("invalid_request",
                                 f"{name} must be a whole number from {allowed.start} to "
                                 f"{allowed.stop - 1}")
        changes[name] = value
    if not changes:
        raise PromotionError("invalid_request", "give top_grade or graduate_grace_days")
    for name, value in changes.items():
        setattr(school, name, value)
    audit(db, "school.year_settings", actor=actor.account_id, school_id=school.id, **changes)
    return school


def year_settings_view(school: School) -> dict[str, Any]:
    return {"school_code": school.code, "top_grade": school.top_grade,
            "graduate_grace_days": school.graduate_grace_days}
