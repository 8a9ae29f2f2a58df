"""Moving an account to another school (issue 11). Flask-free: the API, the admin pages and
the CLI call these.

The account row moves; nothing is copied. Its id (the root of every pairwise ``sub``), its
card bindings and its consents stay, so every app sees the same person with a new school.

Who may move it — a two-sided handshake, or one step by the platform:

- the *sending* school's admin **offers** the move (an :class:`AccountTransfer` row,
  ``offered``, expiring after :data:`OFFER_LIFETIME`); a new offer for the same account
  replaces the one still pending;
- the *receiving* school's admin **accepts** it (the move happens then, with the login id
  the offer proposed or one the receiver chooses) or **declines** it; the sender may
  withdraw it (``cancelled``);
- a platform admin (the API, the admin page) or the operator (``idp account transfer``)
  moves the account at once.

A school admin never moves an account of another school, nor an admin; the receiver can
only accept an offer addressed to their own school, and the sender never accepts their own
offer (accepting needs the receiving school's admin). What the receiving school holds is
never shown to the sender: a login id clash is found when the move happens.

On the move the person's browser sessions end and every token the apps hold is revoked:
the sign-in name (school + login id) changed and the old one must stop at once, and an app
holding an ID token with the old school must ask again and get the new one (same ``sub``:
the consents stay, so signing in again needs no new "yes"). Password reset and enrolment
codes the sending school handed out stop too. The homeroom class is cleared (it named a
class of the old school); the grade stays. A graduate becomes the receiving school's pupil
(status active). The guardian links the sending school made end (the receiving school links
its pupil's guardians again). Both schools' audit logs record each step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.accounts import lifecycle
from idp.accounts.access import revoke_account_tokens
from idp.accounts.roles import (
    SCHOOL_ADMIN,
    TEACHER,
    Action,
    Actor,
    Forbidden,
    may,
    may_act_on,
    may_grant_role,
)
from idp.admin.accounts import AdminInputError, NotFound, load_account, school_by_code
from idp.audit import audit
from idp.signin.sessions import end_account_sessions
from idp.store.admin_models import AdminApiToken, AdminEnrolmentCode, PasswordResetCode
from idp.store.models import (
    Account,
    AccountTransfer,
    GuardianLink,
    School,
    iso_utc,
    new_id,
    utcnow,
)

OFFER_LIFETIME = timedelta(days=14)
OFFERED, COMPLETED, DECLINED, CANCELLED, EXPIRED = (
    "offered", "completed", "declined", "cancelled", "expired")


class TransferConflict(AdminInputError):
    """The request is well formed but the state refuses it (an offer no longer pending, a
    login id already used at the receiving school); the API answers 409."""


@dataclass
class TransferOutcome:
    transfer: AccountTransfer
    account: Account

    @property
    def moved(self) -> bool:
        return self.transfer.status == COMPLETED


# ----------------------------------------------------------------------------- reading
def effective_status(row: AccountTransfer) -> str:
    """``expired`` for an offer past its time (never written: the clock decides)."""
    if row.status == OFFERED and row.expires_at is not None and row.expires_at <= utcnow():
        return EXPIRED
    return row.status


def transfer_view(row: AccountTransfer, account: Account | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.id, "account_id": row.account_id, "status": effective_status(row),
        "from_school_code": row.from_school.code, "to_school_code": row.to_school.code,
        "from_login_id": row.from_login_id, "to_login_id": row.to_login_id,
        "offered_at": iso_utc(row.offered_at), "expires_at": iso_utc(row.expires_at),
        "decided_at": iso_utc(row.decided_at)}
    if account is not None:  # what the receiving admin needs to recognise the pupil
        body.update(display_name=account.display_name, role=account.role,
                    grade=account.grade)
    return body


def pending_offers(db: Session, actor: Actor) -> list[tuple[AccountTransfer, Account]]:
    """Offers still open that the actor may see: to or from their school (a platform admin:
    all), newest first."""
    stmt = (select(AccountTransfer, Account).join(Account,
                                                  Account.id == AccountTransfer.account_id)
            .where(AccountTransfer.status == OFFERED, AccountTransfer.expires_at > utcnow()))
    if not actor.is_platform_admin:
        if not may(actor, Action.ACCOUNTS, actor.school_id):
            raise Forbidden(f"{actor.role} may not see transfers")
        stmt = stmt.where((AccountTransfer.to_school_id == actor.school_id)
                          | (AccountTransfer.from_school_id == actor.school_id))
    rows = db.execute(stmt.order_by(AccountTransfer.offered_at.desc()).limit(500)).all()
    return [(transfer, account) for transfer, account in rows]


def pending_offer_for(db: Session, account_id: str) -> AccountTransfer | None:
    return db.scalar(select(AccountTransfer).where(
        AccountTransfer.account_id == account_id, AccountTransfer.status == OFFERED,
        AccountTransfer.expires_at > utcnow()).order_by(AccountTransfer.offered_at.desc()))


# ----------------------------------------------------------------------------- input
def school_for_code(db: Session, code: Any) -> School:
    if not isinstance(code, str) or not code.strip() or len(code) > 64:
        raise AdminInputError("invalid_school_code", "school_code: 1-64 characters")
    school = school_by_code(db, code.strip())
    if school is None:
        raise AdminInputError("unknown_school", "no such school")
    return school


def checked_login(login_id: Any) -> str | None:
    from idp.admin.roster import LOGIN_ID_RE

    if login_id is None or login_id == "":
        return None
    if not isinstance(login_id, str) or not LOGIN_ID_RE.match(login_id.strip()):
        raise AdminInputError("invalid_login_id",
                              "login id: letters, digits and . _ @ + - only, at most 64")
    return login_id.strip()


def _transfer(db: Session, transfer_id: str) -> AccountTransfer:
    row = db.get(AccountTransfer, transfer_id) \
        if isinstance(transfer_id, str) and 0 < len(transfer_id) <= 32 else None
    if row is None:
        raise NotFound("no such transfer")
    return row


# ----------------------------------------------------------------------------- the request
def request_transfer(svc, db: Session, actor: Actor, account_id: str, school_code: Any,
                     login_id: Any = None) -> TransferOutcome:
    """``POST /api/admin/accounts/{id}/transfer``: what it does depends on who asks —
    a platform admin moves now, the account's school admin offers, the receiving school's
    admin accepts the pending offer to their school."""
    to_school, new_login = school_for_code(db, school_code), checked_login(login_id)
    if actor.is_platform_admin:
        account = load_account(db, actor, account_id)
        transfer = move(svc, db, account, to_school, new_login, actor_id=actor.account_id)
        return TransferOutcome(transfer, account)
    account = db.get(Account, account_id) \
        if isinstance(account_id, str) and 0 < len(account_id) <= 32 else None
    if account is not None and may_act_on(actor, Action.ACCOUNTS, account.role,
                                          account.school_id):
        return TransferOutcome(offer(db, actor, account, to_school, new_login), account)
    if may(actor, Action.ACCOUNTS, to_school.id):
        # The receiving side: only an offer to this school opens the account to its admin.
        # The latest offer to this school, pending or not: an expired, declined or used one
        # is refused with its reason (accept), never mistaken for "no offer".
        latest = db.scalar(select(AccountTransfer).where(
            AccountTransfer.account_id == account.id,
            AccountTransfer.to_school_id == to_school.id,
            AccountTransfer.expires_at.is_not(None))  # offers, not direct moves
            .order_by(AccountTransfer.offered_at.desc())) if account is not None else None
        if latest is None:
            raise NotFound("no transfer of this account to your school was offered")
        return accept(svc, db, actor, latest.id, login_id)
    if account is None:
        raise NotFound("no such account")
    raise Forbidden(f"{actor.role} may not transfer this account")


def offer(db: Session, actor: Actor, account: Account, to_school: School,
          login_id: str | None) -> AccountTransfer:
    """The sending school's step: an expiring offer, replacing one still pending."""
    if account.school_id == to_school.id:
        raise AdminInputError("same_school", "the account is already in this school")
    now = utcnow()
    for old in db.scalars(select(AccountTransfer).where(
            AccountTransfer.account_id == account.id, AccountTransfer.status == OFFERED)):
        old.status, old.decided_by, old.decided_at = CANCELLED, actor.account_id, now
        _audit_both(db, "transfer.cancelled", old, actor.account_id, reason="replaced")
    row = AccountTransfer(account_id=account.id, from_school_id=account.school_id,
                          to_school_id=to_school.id, from_login_id=account.login_id,
                          to_login_id=login_id, status=OFFERED, offered_by=actor.account_id,
                          offered_at=now, expires_at=now + OFFER_LIFETIME)
    db.add(row)
    db.flush()
    db.refresh(row)  # the schools, for the view and the audit
    _audit_both(db, "transfer.offered", row, actor.account_id)
    return row


def accept(svc, db: Session, actor: Actor, transfer_id: str,
           login_id: Any = None) -> TransferOutcome:
    """The receiving school's step. ``login_id`` overrides the one the offer proposed."""
    row = _transfer(db, transfer_id)
    # Locks, account row then offer row (move's order too: no deadlock), so two answers
    # at once are decided one after the other, the second seeing the first's outcome.
    account = _locked(db, Account, row.account_id)
    row = _locked(db, AccountTransfer, row.id)
    if not (may(actor, Action.ACCOUNTS, row.to_school_id) and account is not None
            and may_grant_role(actor, account.role)):
        # The sender, or anyone else: an offer is accepted by the receiving school only.
        if may(actor, Action.ACCOUNTS, row.from_school_id):
            raise Forbidden("only the receiving school's admin accepts this offer")
        raise NotFound("no such transfer")
    _require_pending(row)
    if account.school_id != row.from_school_id:
        raise TransferConflict("offer_stale", "the account is no longer at the sending school")
    new_login = checked_login(login_id) or row.to_login_id
    _claim(db, row, COMPLETED, actor.account_id)
    move(svc, db, account, row.to_school, new_login, actor_id=actor.account_id, transfer=row)
    return TransferOutcome(row, account)


def decline(db: Session, actor: Actor, transfer_id: str) -> AccountTransfer:
    """The receiver declines (``declined``) or the sender withdraws (``cancelled``)."""
    row = _transfer(db, transfer_id)
    if may(actor, Action.ACCOUNTS, row.to_school_id):
        status = DECLINED
    elif may(actor, Action.ACCOUNTS, row.from_school_id):
        status = CANCELLED
    else:
        raise NotFound("no such transfer")
    row = _locked(db, AccountTransfer, row.id)  # an accept at the same moment decides first
    _require_pending(row)
    _claim(db, row, status, actor.account_id)
    _audit_both(db, f"transfer.{status}", row, actor.account_id)
    return row


def _claim(db: Session, row: AccountTransfer, status: str, actor_id: str) -> None:
    """Answer the offer only if it is still ``offered`` when written (compare and set):
    of two answers at once, on either backend, the second finds it answered (409)."""
    claimed = db.execute(update(AccountTransfer).where(
        AccountTransfer.id == row.id, AccountTransfer.status == OFFERED).values(
        status=status, decided_by=actor_id, decided_at=utcnow())).rowcount
    if claimed != 1:
        raise TransferConflict("offer_not_pending", "the offer was answered a moment ago")
    db.refresh(row)


def _locked(db: Session, model: type, row_id: str) -> Any:
    """The row, locked until the transaction ends and read again (PostgreSQL: a second
    request waits, then sees the first one's outcome; SQLite has no row locks, and
    :func:`_claim` is what decides there). The lock is taken on the bare row: FOR UPDATE
    refuses the eager outer join to the schools."""
    db.execute(select(model.id).where(model.id == row_id).with_for_update())
    return db.get(model, row_id, populate_existing=True)


def _require_pending(row: AccountTransfer) -> None:
    status = effective_status(row)
    if status == EXPIRED:
        raise TransferConflict("offer_expired", "the offer has expired; ask for a new one")
    if status != OFFERED:
        raise TransferConflict("offer_not_pending", f"the offer is already {status}")


# ----------------------------------------------------------------------------- the move
def move(svc, db: Session, account: Account, to_school: School, login_id: str | None, *,
         actor_id: str, transfer: AccountTransfer | None = None) -> AccountTransfer:
    """Move ``account`` to ``to_school`` now (the checks of who may are the caller's)."""
    account = _locked(db, Account, account.id)  # a move at the same moment goes first
    if account.school_id == to_school.id:
        raise AdminInputError("same_school", "the account is already in this school")
    new_login = login_id or account.login_id
    if db.scalar(select(Account.id).where(Account.school_id == to_school.id,
                                          func.lower(Account.login_id) == new_login.lower())):
        raise TransferConflict("login_id_taken",
                               "this login id exists in the receiving school: choose another")
    now = utcnow()
    if transfer is None:  # a direct move keeps the same record as a handshake
        transfer = AccountTransfer(id=new_id(), account_id=account.id,
                                   from_school_id=account.school_id,
                                   to_school_id=to_school.id, from_login_id=account.login_id,
                                   offered_by=actor_id, offered_at=now)
        db.add(transfer)
    transfer.to_login_id, transfer.status = new_login, COMPLETED
    transfer.decided_by, transfer.decided_at = actor_id, now
    for other in db.scalars(select(AccountTransfer).where(  # a board's move ends any offer
            AccountTransfer.account_id == account.id, AccountTransfer.status == OFFERED,
            AccountTransfer.id != transfer.id)):
        other.status, other.decided_by, other.decided_at = CANCELLED, actor_id, now
        _audit_both(db, "transfer.cancelled", other, actor_id, reason="moved")
    before = {"role_before": account.role, "status_before": account.status}
    account.school, account.school_id = to_school, to_school.id
    account.login_id, account.class_name = new_login, ""
    # The sourcedId and attendance number are the sending school's (its roster system's):
    # the receiving school's next roster finds the account by login id and gives its own.
    account.sourced_id, account.student_number = None, ""
    try:  # now, not at a later autoflush: the clash check above cannot see another
        db.flush()  # move's uncommitted row, the unique index does
    except IntegrityError as exc:
        raise TransferConflict("login_id_taken", "this login id exists in the receiving "
                               "school: choose another") from exc
    if account.status == lifecycle.GRADUATED:
        # A graduate going on to the next school is its pupil there: left graduated, the
        # new school's lifecycle run would deactivate them (cards and consents deleted).
        account.status, account.graduated_at = lifecycle.ACTIVE, None
    _end_guardian_links(db, account, transfer, actor_id)
    if account.role == SCHOOL_ADMIN:
        # The receiving school never chose this person as its admin: they arrive as a
        # teacher, and admin API tokens made at the old school stop.
        account.role = TEACHER
        db.execute(update(AdminApiToken).where(AdminApiToken.account_id == account.id,
                                               AdminApiToken.revoked_at.is_(None))
                   .values(revoked_at=now))
    # What the sending school handed out to reach this account stops with the move.
    for model in (PasswordResetCode, AdminEnrolmentCode):
        db.execute(update(model).where(model.account_id == account.id,
                                       model.used_at.is_(None)).values(used_at=now))
    db.flush()
    db.refresh(transfer)
    end_account_sessions(svc.store, account.id)
    revoke_account_tokens(db, account.id, "account_transferred", actor=actor_id)
    _audit_both(db, "account.transferred", transfer, actor_id,
                new_login_id=new_login, direct=transfer.expires_at is None,
                role=account.role, status=account.status, **before)
    return transfer


def _end_guardian_links(db: Session, account: Account, transfer: AccountTransfer,
                        actor_id: str) -> None:
    """The sending school linked these guardians (idp.accounts.guardians): the receiving
    school decides who acts for its pupil. Left in place, a guardian account of one school
    kept acting for a pupil of another, and neither school's admin could end the link
    (each manages only one of the two accounts)."""
    for row in db.scalars(select(GuardianLink).where(
            (GuardianLink.child_id == account.id) | (GuardianLink.guardian_id == account.id))):
        db.delete(row)
        for school_id in (transfer.from_school_id, transfer.to_school_id):
            audit(db, "guardian.unlinked", actor=actor_id, account_id=row.child_id,
                  school_id=school_id, guardian_id=row.guardian_id, link_id=row.id,
                  reason="transferred", transfer_id=transfer.id)


def _audit_both(db: Session, event: str, row: AccountTransfer, actor_id: str,
                **details: Any) -> None:
    """One record in each school's audit log (a school admin reads only their own)."""
    for school_id in (row.from_school_id, row.to_school_id):
        audit(db, event, actor=actor_id, account_id=row.account_id, school_id=school_id,
              transfer_id=row.id, from_school=row.from_school.code,
              to_school=row.to_school.code, from_login_id=row.from_login_id, **details)
