"""Schools, accounts and card bindings as admins manage them. Every change is audited with
the admin who made it; every lookup goes through the permission rule in :mod:`roles`."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from idp.accounts import cards, codes
from idp.accounts.access import revoke_account_tokens
from idp.accounts.lifecycle import status_of
from idp.accounts.roles import (
    ACCOUNT_ROLES,
    STAFF_ROLES,
    Action,
    Actor,
    Forbidden,
    may_grant_role,
    require,
    require_on,
)
from idp.audit import audit
from idp.signin.sessions import end_account_sessions
from idp.store.models import Account, CardBinding, School, utcnow


class NotFound(LookupError):
    pass


class AdminInputError(ValueError):
    """Bad input from an admin; ``code`` is machine-readable, the message human-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


# ----------------------------------------------------------------------------- schools
def list_schools(db: Session, actor: Actor) -> list[School]:
    query = select(School).order_by(School.code)
    if not actor.is_platform_admin:
        require(actor, Action.ACCOUNTS, actor.school_id)
        query = query.where(School.id == actor.school_id)
    return list(db.scalars(query))


#: A school code: it is typed at every sign-in, printed on the slips, matched in roster
#: files and part of page addresses (``/admin/schools/<code>/...``), so letters, digits and
#: ``. _ -`` only — no space, no slash.
SCHOOL_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def school_code_of(raw: str | None) -> str:
    """The code as typed in any IME (full-width letters folded, as the roster reads it);
    raises :class:`AdminInputError` ``bad_school_code`` for a code outside
    :data:`SCHOOL_CODE_RE`."""
    code = unicodedata.normalize("NFKC", raw or "").strip()
    if code and not SCHOOL_CODE_RE.match(code):
        raise AdminInputError("bad_school_code",
                              "a school code is 1-64 letters, digits, '.', '_' or '-'")
    return code


def create_school(db: Session, actor: Actor, code: str, name: str) -> School:
    require(actor, Action.SCHOOLS)
    code, name = school_code_of(code), (name or "").strip()
    if not code or len(code) > 64 or not name or len(name) > 200:
        raise AdminInputError("invalid_school", "code (1-64) and name (1-200) are required")
    if db.scalar(select(School).where(School.code == code)):
        raise AdminInputError("school_exists", f"school {code} already exists")
    row = School(code=code, name=name)
    db.add(row)
    db.flush()
    audit(db, "school.created", actor=actor.account_id, school_id=row.id, code=code)
    return row


def school_by_code(db: Session, code: str) -> School | None:
    return db.scalar(select(School).where(School.code == code)) if code else None


def school_view(row: School) -> dict[str, Any]:
    return {"id": row.id, "code": row.code, "name": row.name, "top_grade": row.top_grade,
            "graduate_grace_days": row.graduate_grace_days}


# ----------------------------------------------------------------------------- accounts
def account_view(row: Account) -> dict[str, Any]:
    return {"id": row.id, "school_code": row.school.code, "login_id": row.login_id,
            "display_name": row.display_name, "role": row.role, "grade": row.grade,
            "class_name": row.class_name, "active": row.active, "locked": row.locked,
            "has_password": row.password_hash is not None,
            "created_at": _iso(row.created_at), "status": status_of(row),
            "graduated_at": _iso(row.graduated_at)}


def load_account(db: Session, actor: Actor, account_id: str,
                 action: Action = Action.ACCOUNTS) -> Account:
    row = db.get(Account, account_id) if account_id and len(account_id) <= 32 else None
    if row is None:
        if not actor.is_admin:
            raise Forbidden("not an admin")
        raise NotFound("no such account")
    # The one rule: own school, and only accounts of a role the actor could grant (a school
    # admin never acts on another admin, school or platform).
    require_on(actor, action, row.role, row.school_id)
    return row


def list_accounts(db: Session, actor: Actor, *, school_id: str | None, query: str = "",
                  limit: int = 100, offset: int = 0) -> tuple[list[Account], int]:
    from idp.accounts.roles import school_scope

    scope = school_scope(actor, Action.ACCOUNTS, school_id)
    stmt = select(Account)
    if scope is not None:
        stmt = stmt.where(Account.school_id == scope)
    if query:
        like = f"%{query[:64]}%"
        stmt = stmt.where(or_(Account.login_id.ilike(like), Account.display_name.ilike(like)))
    total = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.scalars(stmt.order_by(Account.grade, Account.class_name, Account.login_id)
                      .limit(max(1, min(limit, 500))).offset(max(0, offset)))
    return list(rows), total


def create_account(db: Session, actor: Actor, *, school_id: str, login_id: str,
                   display_name: str, role: str, grade: str = "", class_name: str = ""
                   ) -> tuple[Account, str]:
    """A new account without a password, and a one-time reset code to hand to its owner
    (an admin never sees or sets a password)."""
    from idp.admin.roster import LOGIN_ID_RE

    require(actor, Action.ACCOUNTS, school_id)
    if role not in ACCOUNT_ROLES:
        raise AdminInputError("invalid_role", f"role must be one of {', '.join(ACCOUNT_ROLES)}")
    if not may_grant_role(actor, role):
        raise Forbidden("only a platform admin creates admins")
    login_id = (login_id or "").strip()
    if not LOGIN_ID_RE.match(login_id):
        raise AdminInputError("invalid_login_id",
                              "login id: letters, digits and . _ @ + - only, at most 64")
    if len(display_name or "") > 200 or len(grade or "") > 16 or len(class_name or "") > 32:
        raise AdminInputError("too_long", "a field is too long")
    if db.get(School, school_id) is None:
        raise AdminInputError("unknown_school", "no such school")
    if db.scalar(select(Account).where(Account.school_id == school_id,
                                       func.lower(Account.login_id) == login_id.lower())):
        raise AdminInputError("login_id_taken", "this login id exists in the school")
    row = Account(school_id=school_id, login_id=login_id, display_name=display_name or "",
                  role=role, grade=grade or "", class_name=class_name or "",
                  password_hash=None)
    db.add(row)
    db.flush()
    audit(db, "account.created", actor=actor.account_id, account_id=row.id,
          school_id=school_id, role=role)
    code, _ = codes.issue_reset_code(db, account_id=row.id, actor=actor)
    audit(db, "account.reset_code_issued", actor=actor.account_id, account_id=row.id,
          school_id=school_id)
    return row, code


def set_locked(svc, db: Session, actor: Actor, row: Account, locked: bool) -> None:
    if row.id == actor.account_id and locked:
        raise AdminInputError("self_lock", "you cannot lock your own account")
    row.locked = locked
    if locked:
        end_account_sessions(svc.store, row.id)
        revoke_account_tokens(db, row.id, "account_locked", actor=actor.account_id)
    audit(db, "account.locked" if locked else "account.unlocked", actor=actor.account_id,
          account_id=row.id, school_id=row.school_id)


def end_sessions(svc, db: Session, actor: Actor, row: Account) -> int:
    ended = end_account_sessions(svc.store, row.id)
    revoke_account_tokens(db, row.id, "sessions_ended", actor=actor.account_id)
    audit(db, "account.sessions_ended", actor=actor.account_id, account_id=row.id,
          school_id=row.school_id, count=ended)
    return ended


def issue_enrolment_code(db: Session, row: Account, *, actor_id: str) -> str:
    """A one-time code for the staff member's first TOTP enrolment, shown once to whoever
    issued it (``actor_id``: an admin, or ``cli``). Students never enrol TOTP."""
    if row.role not in STAFF_ROLES:
        raise AdminInputError("not_staff", "only staff accounts enrol TOTP")
    code, _ = codes.issue_enrolment_code(db, account_id=row.id, created_by=actor_id)
    audit(db, "admin.enrolment_code_issued", actor=actor_id, account_id=row.id,
          school_id=row.school_id)
    return code


def issue_reset_code(svc, db: Session, actor: Actor, row: Account) -> str:
    """A reset is for an account someone else may be using: its sessions on every device
    end with its app tokens (else a browser still signed in just asks /authorize again)."""
    code, _ = codes.issue_reset_code(db, account_id=row.id, actor=actor)
    end_account_sessions(svc.store, row.id)
    revoke_account_tokens(db, row.id, "password_reset_issued", actor=actor.account_id)
    audit(db, "account.reset_code_issued", actor=actor.account_id, account_id=row.id,
          school_id=row.school_id)
    return code


# ----------------------------------------------------------------------------- cards
def card_view(row: CardBinding) -> dict[str, Any]:
    return {"id": row.id, "account_id": row.account_id, "issuer": row.issuer,
            "serial": row.serial, "not_after": _iso(row.not_after),
            "status": cards.card_status(row), "created_at": _iso(row.created_at),
            "last_used_at": _iso(row.last_used_at), "revoked_at": _iso(row.revoked_at),
            "replaced_by": row.replaced_by_id, "replaced_at": _iso(row.replaced_at)}


def account_cards(db: Session, account_id: str) -> list[CardBinding]:
    return list(db.scalars(select(CardBinding).where(CardBinding.account_id == account_id)
                           .order_by(CardBinding.created_at.desc())))


def revoke_card(svc, db: Session, actor: Actor, card_id: str) -> CardBinding:
    card = db.get(CardBinding, card_id) if card_id and len(card_id) <= 32 else None
    if card is None:
        if not actor.is_admin:
            raise Forbidden("not an admin")
        raise NotFound("no such card")
    account = load_account(db, actor, card.account_id, Action.CARDS)
    if card.status not in cards.CLOSED:  # a replaced card is out already: it stays replaced
        card.status = "revoked"
        card.revoked_at = utcnow()
        # A session signed in with that card should not outlive the binding.
        end_account_sessions(svc.store, account.id)
        revoke_account_tokens(db, account.id, "card_revoked", actor=actor.account_id)
        audit(db, "card.revoked", actor=actor.account_id, account_id=account.id,
              school_id=account.school_id, card_id=card.id)
    return card
