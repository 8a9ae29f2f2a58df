"""Guardians: who may act for which child, when a child needs a guardian's yes, and the
requests a child sends to a guardian. Flask-free; views and the CLI call these.

The age rule (documented in docs/admin-guide.md, "Guardians"):

* A pupil with a birth date: their age today, in Japan time.
* Else a grade that names its stage (``小5``/``P5``, ``中1``/``J1``, ``高1``/``H1``, or the
  two-digit year ``05`` counted from the first year of elementary school): the *youngest*
  age anyone in that grade can be at any time of the school year (year + 5: a first-year
  pupil is 6 on 1 April), so a grade never makes a child look older than they may be.
* Else the age is unknown: a guardian is asked when one is linked (the school has said who
  looks after this pupil), and otherwise the pupil answers alone as before.

A guardian is asked when the app wants more than ``openid`` and the pupil is younger than
the school's ``guardian_consent_age`` (default 13; 0 turns it off), or whenever the app asks
for the ``guardian`` scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.accounts.roles import GUARDIAN, STUDENT, Action, Actor, Forbidden, require
from idp.audit import audit
from idp.store.models import (
    Account,
    Client,
    Consent,
    GuardianLink,
    GuardianRequest,
    School,
    utcnow,
)

GUARDIAN_SCOPE = "guardian"
REQUEST_LIFETIME = timedelta(days=7)
MAX_PENDING_PER_CHILD = 20
#: A request the child's wider ask took the place of (never answered: decided_at stays None).
REPLACED_REQUEST = "replaced"
# The school year (1-12, counted from elementary year 1) each stage's year 1 is.
STAGE_START = {"小": 1, "P": 1, "中": 7, "J": 7, "高": 10, "H": 10}
STAGE_YEARS = {1: 6, 7: 3, 10: 3}


class Need(StrEnum):
    NONE = "none"  # the person answers alone
    GUARDIAN = "guardian"  # a linked guardian must say yes
    NO_GUARDIAN = "no_guardian"  # a guardian must say yes, and none is linked


class GuardianError(ValueError):
    """``code``: not_guardian | not_child | already_linked | no_request | request_closed |
    too_many | invalid_birth_date | invalid_age."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code




def school_year_of(grade: str | None) -> int | None:
    """The grade as a year 1-12 from elementary year 1, when the grade says its stage."""
    text = (grade or "").strip().upper().replace("年", "")
    if len(text) == 2 and text.isdigit() and 1 <= int(text) <= 12:
        return int(text)
    if len(text) >= 2 and text[0] in STAGE_START and text[1:].isdigit():
        start, year = STAGE_START[text[0]], int(text[1:])
        if 1 <= year <= STAGE_YEARS[start]:
            return start + year - 1
    return None


def youngest_age(birth_date: date | None, grade: str | None, today: date) -> int | None:
    if birth_date is not None:
        before_birthday = (today.month, today.day) < (birth_date.month, birth_date.day)
        return today.year - birth_date.year - (1 if before_birthday else 0)
    year = school_year_of(grade)
    return year + 5 if year is not None else None


def guardian_need(child: Account, *, age_limit: int, scopes: set[str], has_guardian: bool,
                  today: date) -> Need:
    """Whether this person may say yes alone to an app asking ``scopes`` (those not already
    agreed to); pure."""
    wanted = set(scopes) - {"openid"}
    if not wanted:
        return Need.NONE
    required = GUARDIAN_SCOPE in wanted
    if not required and child.role == STUDENT and age_limit > 0:
        age = youngest_age(child.birth_date, child.grade, today)
        required = age < age_limit if age is not None else has_guardian
    if not required:
        return Need.NONE
    return Need.GUARDIAN if has_guardian else Need.NO_GUARDIAN


MAX_CONSENT_AGE = 20


def parse_birth_date(raw: object, today: date) -> date | None:
    """``YYYY-MM-DD`` (a past date after 1900) or empty/None for none; GuardianError
    ("invalid_birth_date") otherwise."""
    if raw in (None, ""):
        return None
    try:
        value = date.fromisoformat(raw) if isinstance(raw, str) and len(raw) == 10 else None
    except ValueError:
        value = None
    if value is None or not date(1900, 1, 1) <= value <= today:
        raise GuardianError("invalid_birth_date", "birth_date is a past date YYYY-MM-DD or null")
    return value


def set_birth_date(db: Session, actor: Actor, account: Account, value: date | None) -> None:
    require(actor, Action.ACCOUNTS, account.school_id)
    account.birth_date = value
    audit(db, "account.birth_date_set", actor=actor.account_id, account_id=account.id,
          school_id=account.school_id)


def set_consent_age(db: Session, actor: Actor, school: School, under: object) -> int:
    require(actor, Action.GUARDIANS, school.id)
    if isinstance(under, bool) or not isinstance(under, int) or \
            not 0 <= under <= MAX_CONSENT_AGE:
        raise GuardianError("invalid_age", f"under is an integer 0-{MAX_CONSENT_AGE}")
    school.guardian_consent_age = under
    audit(db, "school.guardian_consent_age_set", actor=actor.account_id, school_id=school.id,
          under=under)
    return under


# ----------------------------------------------------------------------------- links
def _link(db: Session, guardian_id: str, child_id: str) -> GuardianLink | None:
    return db.scalar(select(GuardianLink).where(GuardianLink.guardian_id == guardian_id,
                                                GuardianLink.child_id == child_id))


def is_linked(db: Session, guardian_id: str, child_id: str) -> bool:
    return _link(db, guardian_id, child_id) is not None


def has_guardian(db: Session, child_id: str) -> bool:
    """A linked guardian whose account can sign in."""
    return db.scalar(select(GuardianLink.id).join(Account, Account.id == GuardianLink.guardian_id)
                     .where(GuardianLink.child_id == child_id, Account.active.is_(True))
                     .limit(1)) is not None


def _check_pair(actor: Actor, guardian: Account, child: Account) -> None:
    """The one linking rule: a guardian account and a pupil, both in a school the actor
    manages (a school admin: their own; a platform admin: any)."""
    require(actor, Action.GUARDIANS, child.school_id)
    require(actor, Action.GUARDIANS, guardian.school_id)
    if guardian.role != GUARDIAN:
        raise GuardianError("not_guardian", "the guardian account must have the role guardian")
    if child.role != STUDENT:
        raise GuardianError("not_child", "only a student account can be a guardian's child")


LINK_ORIGINS = ("school", "roster")


def link(db: Session, actor: Actor, guardian: Account, child: Account, *,
         origin: str = "school") -> GuardianLink:
    """``origin`` "roster" marks a link a roster import made (a later bulk roster may end
    it); "school" is a link made by hand, which no roster ever ends."""
    if origin not in LINK_ORIGINS:
        raise ValueError(f"origin is one of {LINK_ORIGINS}")
    _check_pair(actor, guardian, child)
    if is_linked(db, guardian.id, child.id):
        raise GuardianError("already_linked", "this guardian is already linked to this child")
    row = GuardianLink(guardian_id=guardian.id, child_id=child.id,
                       created_by=actor.account_id, origin=origin)
    db.add(row)
    db.flush()
    audit(db, "guardian.linked", actor=actor.account_id, account_id=child.id,
          school_id=child.school_id, guardian_id=guardian.id, link_id=row.id, origin=origin)
    return row


def unlink(db: Session, actor: Actor, row: GuardianLink, *, via: str = "school") -> None:
    """End a link: the guardian sees nothing of the child from the next request on. What
    the guardian said yes to stays (the child's consents are the child's).

    The child's school decides who acts for its pupil, so its admin may end any link to
    the pupil, one to another school's guardian account included (which only a platform
    admin could make: :func:`_check_pair` needs both schools to link)."""
    child, guardian = db.get(Account, row.child_id), db.get(Account, row.guardian_id)
    require(actor, Action.GUARDIANS, child.school_id)
    db.delete(row)
    audit(db, "guardian.unlinked", actor=actor.account_id, account_id=child.id,
          school_id=child.school_id, guardian_id=guardian.id, link_id=row.id, via=via)


def load_link(db: Session, actor: Actor, link_id: str) -> GuardianLink | None:
    """The link if the actor may manage it (one the actor may not see is None, as unknown)."""
    row = db.get(GuardianLink, link_id) if link_id and len(link_id) <= 32 else None
    if row is None:
        return None
    child = db.get(Account, row.child_id)
    try:
        require(actor, Action.GUARDIANS, child.school_id)
    except Forbidden:
        return None
    return row


@dataclass
class LinkView:
    link: GuardianLink
    guardian: Account
    child: Account


def links_in(db: Session, actor: Actor, *, school_id: str | None,
             account_id: str | None = None) -> list[LinkView]:
    """Links whose child is in ``school_id`` (a school admin: only their own school), or
    every link of one account (as guardian or as child)."""
    from sqlalchemy.orm import aliased

    guardian, child = aliased(Account), aliased(Account)
    stmt = (select(GuardianLink, guardian, child)
            .join(guardian, guardian.id == GuardianLink.guardian_id)
            .join(child, child.id == GuardianLink.child_id))
    if not actor.is_platform_admin:
        school_id = school_id or actor.school_id
    if school_id is not None:
        require(actor, Action.GUARDIANS, school_id)
        stmt = stmt.where(child.school_id == school_id)
    if account_id is not None:
        stmt = stmt.where((GuardianLink.guardian_id == account_id)
                          | (GuardianLink.child_id == account_id))
    rows = db.execute(stmt.order_by(child.login_id, guardian.login_id)).all()
    return [LinkView(*row) for row in rows]


def link_view(view: LinkView) -> dict:
    def person(a: Account) -> dict:
        return {"id": a.id, "school_code": a.school.code, "login_id": a.login_id,
                "display_name": a.display_name}

    return {"id": view.link.id, "guardian": person(view.guardian), "child": person(view.child),
            "created_at": view.link.created_at.replace(microsecond=0).isoformat() + "Z"}


def children_of(db: Session, guardian_id: str) -> list[Account]:
    """The children this guardian may see now (a link ended is gone at once)."""
    return list(db.scalars(select(Account).join(GuardianLink, GuardianLink.child_id == Account.id)
                           .where(GuardianLink.guardian_id == guardian_id)
                           .order_by(Account.display_name, Account.login_id)))


def child_of(db: Session, guardian_id: str, child_id: str) -> Account | None:
    """The child, only if linked to this guardian; anyone else is None (not found)."""
    if not child_id or len(child_id) > 32 or not is_linked(db, guardian_id, child_id):
        return None
    return db.get(Account, child_id)


# ----------------------------------------------------------------------------- requests
def pending_request(db: Session, child_id: str, client_id: str) -> GuardianRequest | None:
    return db.scalar(select(GuardianRequest).where(
        GuardianRequest.child_id == child_id, GuardianRequest.client_id == client_id,
        GuardianRequest.status == "pending", GuardianRequest.expires_at > utcnow()))


def ask_guardian(db: Session, child: Account, client_id: str, scopes: list[str]
                 ) -> GuardianRequest:
    """The child's "please check" for this app: one pending request per app. When the app
    now asks more, the open request is replaced by a new one asking for all of it (never
    widened in place: a guardian who read the old one and presses いいよ must not grant what
    they were not shown; their answer to the old id finds it closed)."""
    row = pending_request(db, child.id, client_id)
    if row is not None and set(scopes) <= set(row.scopes or []):
        return row
    replaced = None
    if row is not None and _close(db, row, REPLACED_REQUEST):
        replaced = row.id
        scopes = sorted(set(row.scopes or []) | set(scopes))
    open_count = len(db.scalars(select(GuardianRequest.id).where(
        GuardianRequest.child_id == child.id, GuardianRequest.status == "pending",
        GuardianRequest.expires_at > utcnow())).all())
    if open_count >= MAX_PENDING_PER_CHILD:
        raise GuardianError("too_many", "too many requests are waiting")
    row = GuardianRequest(child_id=child.id, client_id=client_id, scopes=sorted(scopes),
                          expires_at=utcnow() + REQUEST_LIFETIME)
    db.add(row)
    db.flush()
    audit(db, "guardian.request_sent", actor=child.id, account_id=child.id,
          school_id=child.school_id, client_id=client_id, scopes=sorted(scopes),
          replaces=replaced)
    return row


def _close(db: Session, row: GuardianRequest, status: str, *,
           decided_by: str | None = None) -> bool:
    """Close a request only if it is still pending when written (compare and set): of two
    answers at once (two guardians; a guardian and the child's wider ask) one wins, so a
    request never reads "declined" while its yes was stored."""
    values: dict = {"status": status}
    if decided_by is not None:
        values.update(decided_by=decided_by, decided_at=utcnow())
    closed = db.execute(update(GuardianRequest).where(
        GuardianRequest.id == row.id, GuardianRequest.status == "pending")
        .values(**values)).rowcount
    db.refresh(row)
    return closed == 1


@dataclass
class PendingView:
    request: GuardianRequest
    child: Account
    client: Client


def pending_for(db: Session, guardian_id: str) -> list[PendingView]:
    """Open requests of this guardian's children, newest first."""
    rows = db.execute(
        select(GuardianRequest, Account, Client)
        .join(Account, Account.id == GuardianRequest.child_id)
        .join(Client, Client.client_id == GuardianRequest.client_id)
        .join(GuardianLink, GuardianLink.child_id == GuardianRequest.child_id)
        .where(GuardianLink.guardian_id == guardian_id, GuardianRequest.status == "pending",
               GuardianRequest.expires_at > utcnow())
        .order_by(GuardianRequest.created_at.desc())).all()
    return [PendingView(*row) for row in rows]


def decide(db: Session, guardian: Account, request_id: str, *, approve: bool
           ) -> GuardianRequest:
    """A linked guardian answers a child's request. Only the guardian of that child, a
    request still open, an app still enabled; approving stores the child's consent (the
    child's pairwise ``sub`` is unchanged: it is the child's account)."""
    row = db.get(GuardianRequest, request_id) if request_id and len(request_id) <= 32 else None
    if row is None or guardian.role != GUARDIAN or not is_linked(db, guardian.id, row.child_id):
        raise GuardianError("no_request", "no such request")
    client = db.get(Client, row.client_id)
    if row.status != "pending" or row.expires_at <= utcnow() or not client.enabled:
        raise GuardianError("request_closed", "this request is no longer open")
    if not _close(db, row, "approved" if approve else "declined", decided_by=guardian.id):
        raise GuardianError("request_closed", "this request was answered a moment ago")
    child = db.get(Account, row.child_id)
    if approve:
        consent = db.scalar(select(Consent).where(Consent.account_id == child.id,
                                                  Consent.client_id == row.client_id))
        allowed = set(client.scopes or [])
        scopes = [s for s in row.scopes or [] if s in allowed]
        if consent is None:
            db.add(Consent(account_id=child.id, client_id=row.client_id, scopes=scopes,
                           approved_by=guardian.id))
        else:
            consent.scopes = sorted(set(consent.scopes or []) | set(scopes))
            consent.granted_at, consent.approved_by = utcnow(), guardian.id
    audit(db, "guardian.consent_approved" if approve else "guardian.consent_declined",
          actor=guardian.id, account_id=child.id, school_id=child.school_id,
          client_id=row.client_id, scopes=list(row.scopes or []))
    return row
