"""Card bindings: which school account a JPKI user-authentication certificate signs in to.

A certificate is a *binding* to an account, found by (issuer, serial). It changes when the
card is renewed; the account, and so every relying party's pairwise ``sub``, stays. A card
bound to one account is never moved to another, and every bind, refusal and revoke is an
audit event. Each function works inside the caller's unit of work (``db``): a refusal is
audited in it and then raised as :class:`CardError`, so the caller catches the error inside
its ``with db.session()`` block to keep the audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from idp.accounts.access import revoke_account_tokens
from idp.audit import audit
from idp.event_log import EventLog
from idp.jpki.errors import CardError
from idp.jpki.verifier import VerifiedCard
from idp.store.db import dialect_insert
from idp.store.models import Account, CardBinding, iso_utc, new_id, utcnow

ACTIVE, REVOKED, EXPIRED, REPLACED = "active", "revoked", "expired", "replaced"
#: Stored statuses that keep a certificate out for good (``expired`` is computed).
CLOSED = frozenset({REVOKED, REPLACED})


@dataclass(frozen=True)
class CardIdentity:
    """The identifiers of a verified certificate that a binding keeps (no personal data)."""

    issuer: str
    serial: str
    certificate_sha256: str
    not_after: datetime  # naive UTC, as the database keeps it

    @classmethod
    def from_verified(cls, card: VerifiedCard) -> CardIdentity:
        return cls(card.issuer, card.serial, card.certificate_sha256, _naive_utc(card.not_after))

    @classmethod
    def from_pending(cls, pending: dict[str, Any]) -> CardIdentity:
        """From the session's ``pending_card``; a damaged record is an invalid request."""
        try:
            not_after = datetime.fromisoformat(str(pending["not_after"]))
            values = [str(pending[k]) for k in ("issuer", "serial", "certificate_sha256")]
        except (KeyError, TypeError, ValueError) as exc:
            raise CardError("invalid_request", "pending card record is incomplete") from exc
        return cls(*values, _naive_utc(not_after))


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def binding_status(binding: CardBinding, now: datetime | None = None) -> str:
    """``active``, ``revoked``, ``replaced`` (a renewed card took its place) or ``expired``
    (the certificate's not-after has passed): the one rule the pages, the API and the CLI
    show, and sign-in obeys."""
    if binding.status in CLOSED:
        return binding.status
    if binding.not_after <= (now or utcnow()):
        return EXPIRED
    return ACTIVE


def find_binding(db: Session, issuer: str, serial: str) -> CardBinding | None:
    return db.scalar(select(CardBinding).where(CardBinding.issuer == issuer,
                                               CardBinding.serial == serial))


def bindings_of(db: Session, account_id: str) -> list[CardBinding]:
    """Every binding of an account, newest first, inactive ones included."""
    return list(db.scalars(select(CardBinding).where(CardBinding.account_id == account_id)
                           .order_by(CardBinding.created_at.desc())))


def _refuse(db: Session, event: str, code: str, reason: str, *, account_id: str | None,
            ip: str | None, actor: str | None = None, **details: Any) -> CardError:
    audit(db, event, outcome="refused", account_id=account_id, ip=ip, actor=actor,
          reason=reason, **details)
    return CardError(code, reason.replace("_", " "))


@dataclass(frozen=True)
class CardAccount:
    """The account a card signs in to, and the binding that says so (recorded in the
    session: the admin rule asks which binding a card sign-in used)."""

    account: Account
    binding_id: str | None  # None: signed in without a binding to record (the tablet)


# The card sign-in's hot path (a linked, active card): one read outside a transaction,
# the account from the process's cache, the last-use time written at most once a minute
# (what the pages show is minute-precise; a morning's sign-ins at three apps write once),
# and the audit event through the event log. Only a refusal opens a unit of work.
# The read carries the account's active and locked columns too: they decide, not the
# cache, so an account locked in a process whose change message was lost (a failed
# publish) is refused here at once rather than when the cache entry expires.
_BINDING_OF_CARD = select(
    CardBinding.id, CardBinding.account_id, CardBinding.certificate_sha256,
    CardBinding.status, CardBinding.replaced_by_id, CardBinding.last_used_at,
    Account.active.label("account_active"), Account.locked.label("account_locked"),
).join(Account, Account.id == CardBinding.account_id).where(
    CardBinding.issuer == bindparam("issuer"), CardBinding.serial == bindparam("serial"))
_BINDINGS = CardBinding.__table__.c
_TOUCH_BINDING = (update(CardBinding.__table__).where(_BINDINGS.id == bindparam("binding_id"))
                  .values(last_used_at=bindparam("used_at")))
LAST_USED_PRECISION = timedelta(seconds=60)


class AccountSource(Protocol):
    """The process's account cache, as the card sign-in uses it."""

    def get(self, key: str) -> Account | None: ...
    def forget_matching(self, part: str) -> None: ...


def account_for_card(database: Any, card: VerifiedCard, *, ip: str | None,
                     accounts: AccountSource, events: EventLog,
                     **audit_details: Any) -> CardAccount | None:
    """The account a verified card signs in to, or ``None`` when the card is bound to nothing.

    Refuses (audited, raised) a revoked binding, a binding whose certificate differs from the
    presented one, and an account that may not sign in (as the database has it now).
    ``accounts``: the process's account cache; ``audit_details`` go into every
    ``login.card`` event (the admin page's ``page="admin"``).
    """
    with database.one_statement() as conn:  # one read: no ORM session, no transaction
        binding = conn.execute(_BINDING_OF_CARD, {
            "issuer": card.issuer, "serial": card.serial}).first()
    if binding is None:
        events.audit("login.card", outcome="not_linked", ip=ip, issuer=card.issuer,
                     serial=card.serial, **audit_details)
        return None
    details = {"binding_id": binding.id, "serial": card.serial, **audit_details}
    refusal = _binding_refusal(binding, card)
    account = None
    if refusal is None:
        account = _current_account(accounts, binding)
        if account is None:
            refusal = ("card_not_linked", "account_inactive", {})
    if refusal is not None:
        code, reason, extra = refusal
        # The refusal's audit event commits before the error is raised.
        with database.session() as db:
            error = _refuse(db, "login.card", code, reason, account_id=binding.account_id,
                            ip=ip, **extra, **details)
        raise error
    assert account is not None  # no refusal: the account was found usable
    now = utcnow()
    if binding.last_used_at is None or now - binding.last_used_at >= LAST_USED_PRECISION:
        with database.one_statement() as conn:
            conn.execute(_TOUCH_BINDING, {"binding_id": binding.id, "used_at": now})
    events.audit("login.card", account_id=account.id, school_id=account.school_id, ip=ip,
                 **details)
    return CardAccount(account, binding.id)


def _current_account(accounts: AccountSource, binding: Any) -> Account | None:
    """The binding's account if it may sign in, as the row just read says; the cached
    account when the cache agrees with the row, else the cache entry is dropped (a change
    this process has not heard of yet: its other paths read the row too) and, if the row
    said usable, read again. None when it may not sign in."""
    def usable(account: Account | None) -> bool:
        return account is not None and account.active and not account.locked

    account = accounts.get(binding.account_id)
    if binding.account_active and not binding.account_locked and usable(account):
        return account
    accounts.forget_matching(binding.account_id)
    if not binding.account_active or binding.account_locked:
        return None
    account = accounts.get(binding.account_id)
    return account if usable(account) else None


def _binding_refusal(binding: Any, card: VerifiedCard
                     ) -> tuple[str, str, dict[str, Any]] | None:
    """Why a found binding may not sign in: (error code, audited reason, more details)."""
    if binding.certificate_sha256 != card.certificate_sha256:
        # Same issuer name and serial, another certificate: another CA generation. Never
        # treat it as the bound card.
        return "card_linked_elsewhere", "certificate_mismatch", {}
    if binding.status == REVOKED:
        return "certificate_revoked", "binding_revoked", {}
    if binding.status == REPLACED:
        # The old card of a renewed pair: its successor signs in, this one never again.
        return "card_replaced", "binding_replaced", {"replaced_by": binding.replaced_by_id}
    return None


def bind_card(db: Session, account: Account, card: CardIdentity, *, ip: str | None,
              actor: str | None = None, linked_with_mfa: bool = False,
              **audit_details: Any) -> CardBinding:
    """Bind ``card`` to ``account`` (idempotent for the same account); never move it.

    ``linked_with_mfa``: the person passed TOTP in the sign-in that links it (only such a
    binding stands in for an admin's second factor). A new card linked while another is
    active is a renewed card: the old binding becomes ``replaced`` (:func:`replace_active`)
    and the event says ``second_card=True`` and which it replaced. ``audit_details`` go
    into the ``card.bound`` event (e.g. ``assisted_by``)."""
    existing = find_binding(db, card.issuer, card.serial)
    if existing is None:
        row = _insert_unless_bound(db, account, card, linked_with_mfa)
        if row is not None:
            replaced = replace_active(db, account, row, actor=actor)
            audit(db, "card.bound", account_id=account.id, school_id=account.school_id,
                  ip=ip, actor=actor, binding_id=row.id, issuer=card.issuer,
                  serial=card.serial, not_after=card.not_after.isoformat(),
                  second_card=bool(replaced), replaced=[r.id for r in replaced],
                  linked_with_mfa=linked_with_mfa, **audit_details)
            return row
        # Bound by another request at the same moment: decide as if we had seen it.
        existing = find_binding(db, card.issuer, card.serial)
        if existing is None:  # the same certificate under another (issuer, serial)
            raise _refuse(db, "card.bind", "card_linked_elsewhere", "certificate_mismatch",
                          account_id=account.id, ip=ip, actor=actor, serial=card.serial)
    refusal = _refusal(db, account, card, existing, ip=ip, actor=actor)
    if refusal is not None:
        raise refusal
    return existing


def check_bindable(db: Session, account: Account, card: CardIdentity, *, ip: str | None,
                   actor: str | None = None) -> CardBinding | None:
    """Refuse (audited, raised) now what :func:`bind_card` would refuse, without binding:
    asked before the person is shown the confirmation page. Returns the account's own
    binding of this card when it is bound already."""
    existing = find_binding(db, card.issuer, card.serial)
    if existing is None:
        by_certificate = db.scalar(select(CardBinding).where(
            CardBinding.certificate_sha256 == card.certificate_sha256))
        if by_certificate is not None:
            raise _refuse(db, "card.bind", "card_linked_elsewhere", "certificate_mismatch",
                          account_id=account.id, ip=ip, actor=actor, serial=card.serial)
        return None
    refusal = _refusal(db, account, card, existing, ip=ip, actor=actor)
    if refusal is not None:
        raise refusal
    return existing


def _refusal(db: Session, account: Account, card: CardIdentity, existing: CardBinding, *,
             ip: str | None, actor: str | None) -> CardError | None:
    """Why an already-bound card may not be (re)bound to ``account`` (audited), if it may not."""
    details = {"binding_id": existing.id, "serial": card.serial}
    if existing.account_id != account.id:
        return _refuse(db, "card.bind", "card_linked_elsewhere", "linked_elsewhere",
                       account_id=account.id, ip=ip, actor=actor,
                       bound_account_id=existing.account_id, **details)
    if existing.certificate_sha256 != card.certificate_sha256:
        return _refuse(db, "card.bind", "card_linked_elsewhere", "certificate_mismatch",
                       account_id=account.id, ip=ip, actor=actor, **details)
    if existing.status == REVOKED:
        return _refuse(db, "card.bind", "certificate_revoked", "binding_revoked",
                       account_id=account.id, ip=ip, actor=actor, **details)
    if existing.status == REPLACED:
        # Replaced stays replaced: re-linking the old card would silently undo the renewal.
        return _refuse(db, "card.bind", "card_replaced", "binding_replaced",
                       account_id=account.id, ip=ip, actor=actor, **details)
    return None


def replace_active(db: Session, account: Account, successor: CardBinding, *,
                   actor: str | None) -> list[CardBinding]:
    """Mark every other binding of ``account`` that still signs in (active and not
    expired) as replaced by ``successor``, audited. An expired one stays "expired": it
    stopped by itself and its history says so.

    Why every one: a person has one My Number card, and a renewed card cannot be told from
    another person's by the certificate (its subject is an opaque id that changes at
    renewal), so a newly linked card always takes the place of the old; the confirmation
    page says so before the person presses つなぐ.

    The apps' tokens stay: they belong to the person, not to a card, and a renewal is not
    a loss (a lost card is *revoked*, which does end them: :func:`revoke_binding`)."""
    now = utcnow()
    if binding_status(successor, now) != ACTIVE:
        return []  # a certificate that cannot sign in takes nobody's place
    replaced = [row for row in bindings_of(db, account.id)
                if row.id != successor.id and binding_status(row, now) == ACTIVE]
    for row in replaced:
        row.status, row.replaced_by_id, row.replaced_at = REPLACED, successor.id, now
        audit(db, "card.replaced", account_id=account.id, school_id=account.school_id,
              actor=actor, binding_id=row.id, serial=row.serial, replaced_by=successor.id)
    return replaced


def reinstate_binding(db: Session, account: Account, binding: CardBinding, *, actor: str,
                      ip: str | None, **audit_details: Any) -> CardBinding:
    """Put a replaced card of ``account`` back, as the school does in person (the student
    taps it with the PIN, a staff member signed in with TOTP confirms: idp.admin.assisted).

    For the one case where a replacement was wrong: someone who knew the password linked
    their own card and so knocked out the student's real one. A genuinely renewed card's old
    certificate is revoked by J-LIS and fails verification long before this point. The card
    that took its place (if it still works) is replaced in turn; the sign-in ceremonies never
    come here (:func:`_refusal` refuses a replaced binding).

    Putting a card back says someone else got in: every token the apps hold for the
    account ends here, as for a revoked card (the caller ends the IdP sessions, which live
    in the short-lived store)."""
    if binding.account_id != account.id or binding.status != REPLACED:
        raise CardError("card_linked_elsewhere", "not a replaced binding of this account")
    binding.status, binding.replaced_by_id, binding.replaced_at = ACTIVE, None, None
    replaced = replace_active(db, account, binding, actor=actor)
    revoke_account_tokens(db, account.id, "card_reinstated", actor=actor)
    audit(db, "card.reinstated", account_id=account.id, school_id=account.school_id, ip=ip,
          actor=actor, binding_id=binding.id, serial=binding.serial,
          replaced=[r.id for r in replaced], **audit_details)
    return binding


def active_card_count(db: Session, account_id: str) -> int:
    """How many of the account's cards sign in today (not revoked, not expired)."""
    return sum(1 for row in bindings_of(db, account_id) if binding_status(row) == ACTIVE)


def _insert_unless_bound(db: Session, account: Account, card: CardIdentity,
                         linked_with_mfa: bool = False) -> CardBinding | None:
    """The new binding, or ``None`` when the card got bound in the meantime.

    ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL alike), so two requests
    binding the same card at once cannot both win, and the loser's unit of work (its audit
    events) stays usable: no failed flush, no savepoint."""
    statement = dialect_insert(db.get_bind().dialect.name)(CardBinding).values(
        id=new_id(), account_id=account.id, issuer=card.issuer, serial=card.serial,
        certificate_sha256=card.certificate_sha256, not_after=card.not_after, status=ACTIVE,
        created_at=utcnow(), linked_with_mfa=linked_with_mfa,
    ).on_conflict_do_nothing().returning(CardBinding.id)
    inserted = db.execute(statement).scalar_one_or_none()
    return db.get(CardBinding, inserted) if inserted is not None else None


def revoke_binding(db: Session, binding_id: str, *, actor: str,
                   reason: str | None = None) -> CardBinding:
    """Revoke a binding: the card no longer signs in and cannot be re-linked (a replaced
    binding is out already and keeps its status, successor and date)."""
    binding = db.get(CardBinding, binding_id)
    if binding is None:
        raise LookupError(f"no card binding {binding_id}")
    if binding.status not in CLOSED:  # a replaced card is out already: it stays replaced
        binding.status = REVOKED
        binding.revoked_at = utcnow()
        revoke_account_tokens(db, binding.account_id, "card_revoked", actor=actor)
        audit(db, "card.revoked", account_id=binding.account_id, actor=actor,
              binding_id=binding.id, serial=binding.serial, reason=reason)
    return binding


def describe_binding(binding: CardBinding, now: datetime | None = None) -> dict[str, Any]:
    """A binding as plain data (CLI, admin pages); ``active`` is false when expired/revoked."""
    status = binding_status(binding, now)
    iso = iso_utc
    return {"id": binding.id, "account_id": binding.account_id, "status": status,
            "active": status == ACTIVE, "issuer": binding.issuer, "serial": binding.serial,
            "certificate_sha256": binding.certificate_sha256,
            "not_after": iso(binding.not_after), "created_at": iso(binding.created_at),
            "last_used_at": iso(binding.last_used_at), "revoked_at": iso(binding.revoked_at),
            "replaced_by": binding.replaced_by_id, "replaced_at": iso(binding.replaced_at)}


def card_status(row: CardBinding, now: datetime | None = None) -> str:
    """revoked | replaced | expired | active, as the pages and the API show a binding (the
    same rule as :func:`binding_status`, under the name the pages use)."""
    return binding_status(row, now)

