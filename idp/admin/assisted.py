"""School-assisted card linking: a teacher or school admin, signed in with TOTP at the school
PC, links the card a student taps to the student's account chosen from the roster — no
student password needed (the way children who forget passwords get their card working).

Flask-free. The steps, each tied to the staff member *and* the chosen student:

1. a challenge issued under this browser and ``assist:<staff>:<student>`` (never usable by
   the student sign-in, whose challenges live under login transactions);
2. the bridge token verified against it; a card already linked to anyone (the student
   included, or the staff member's own card) is refused here, audited;
3. the verified card remembered for this browser and staff member only, naming the student;
4. on the staff member's confirmation (the page names the student) the card is bound, with
   ``actor`` and ``assisted_by`` = the staff account in the ``card.bound`` audit event.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from idp.accounts.cards import (
    REPLACED,
    CardIdentity,
    bind_card,
    binding_status,
    find_binding,
    reinstate_binding,
)
from idp.accounts.roles import STUDENT, Action, Actor, Forbidden, school_scope
from idp.admin.accounts import AdminInputError, load_account
from idp.audit import audit
from idp.jpki.errors import CardError
from idp.jpki.verifier import VerifiedCard
from idp.signin.sessions import end_account_sessions
from idp.store.models import Account, CardBinding
from idp.store.shortlived import ShortLivedStore


class LinkRefused(Exception):
    """The card cannot be linked here; ``code`` names why (the page has the words)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


PENDING_TTL = 5 * 60  # the student is at the PC: the confirmation follows at once
ROSTER_LIMIT = 200


def challenge_txn(actor: Actor, student_id: str) -> str:
    """The challenge slot of this staff member linking this student."""
    return f"assist:{actor.account_id}:{student_id}"


def roster(db: Session, actor: Actor, *, school_id: str | None, query: str = ""
           ) -> list[Account]:
    """The students the actor may link a card for (own school; a platform admin: any)."""
    scope = school_scope(actor, Action.LINK_CARDS, school_id)
    stmt = select(Account).where(Account.role == STUDENT, Account.active.is_(True))
    if scope is not None:
        stmt = stmt.where(Account.school_id == scope)
    if query:
        like = f"%{query[:64]}%"
        stmt = stmt.where(or_(Account.login_id.ilike(like), Account.display_name.ilike(like)))
    return list(db.scalars(stmt.order_by(Account.grade, Account.class_name, Account.login_id)
                           .limit(ROSTER_LIMIT)))


def load_student(db: Session, actor: Actor, account_id: str) -> Account:
    """The student, if the actor may link cards for them and the account can sign in."""
    row = load_account(db, actor, account_id, Action.LINK_CARDS)
    if not row.active or row.locked:
        # A locked or deactivated account stays shut: linking a card must not reopen it.
        raise AdminInputError("account_unavailable", "the account is locked or inactive")
    return row


def active_cards(db: Session, account_id: str) -> list[CardBinding]:
    rows = db.scalars(select(CardBinding).where(CardBinding.account_id == account_id))
    return [r for r in rows if binding_status(r) == "active"]


def refuse(db: Session, actor: Actor, student: Account, code: str, reason: str, *,
           ip: str | None, **details: Any) -> LinkRefused:
    audit(db, "card.bind", outcome="refused", account_id=student.id,
          school_id=student.school_id, actor=actor.account_id, assisted_by=actor.account_id,
          ip=ip, reason=reason, **details)
    return LinkRefused(code)


def check_card(db: Session, actor: Actor, student: Account, card: VerifiedCard, *,
               ip: str | None) -> CardIdentity:
    """The verified card's identity, if it is linked to nobody yet; else
    :class:`LinkRefused`, audited.

    Refusing every existing binding (not only other accounts') keeps the rule simple and
    catches the staff member tapping their own card: it cannot become a student's. The one
    exception is the student's own *replaced* card: the school may put it back
    (:func:`link`, :func:`idp.accounts.cards.reinstate_binding`)."""
    binding = find_binding(db, card.issuer, card.serial)
    if binding is not None:
        if binding.account_id == student.id and binding.status == REPLACED and \
                binding.certificate_sha256 == card.certificate_sha256:
            # The student's own card, replaced by another: only the school may put it back,
            # in person (reinstate_binding says when that is right).
            return CardIdentity.from_verified(card)
        if binding.account_id == student.id:
            raise refuse(db, actor, student, "already_linked", "already_linked", ip=ip,
                         binding_id=binding.id, serial=card.serial)
        reason = "staff_own_card" if binding.account_id == actor.account_id \
            else "linked_elsewhere"
        raise refuse(db, actor, student, "card_linked_elsewhere", reason, ip=ip,
                     binding_id=binding.id, serial=card.serial)
    # The same certificate under another issuer/serial spelling: also somebody else's.
    same_cert = db.scalar(select(func.count()).select_from(CardBinding).where(
        CardBinding.certificate_sha256 == card.certificate_sha256))
    if same_cert:
        raise refuse(db, actor, student, "card_linked_elsewhere", "certificate_mismatch",
                     ip=ip, serial=card.serial)
    return CardIdentity.from_verified(card)


# ----------------------------------------------------------------------------- pending card
def _pending_key(browser: str, actor: Actor) -> str:
    return f"assist-card:{browser}:{actor.account_id}"


def remember(store: ShortLivedStore, *, browser: str, actor: Actor, student_id: str,
             card: CardIdentity) -> None:
    """Keep the verified card for the confirmation; a new tap replaces an older one."""
    record = asdict(card)
    record["not_after"] = card.not_after.isoformat()
    store.put(_pending_key(browser, actor), {"student_id": student_id, "card": record,
                                             "at": time.time()}, PENDING_TTL)


def pending(store: ShortLivedStore, *, browser: str, actor: Actor,
            student_id: str) -> CardIdentity | None:
    """The card verified in this browser by this staff member for this student, if any."""
    record = store.get(_pending_key(browser, actor))
    return _identity(record, student_id)


def take_pending(store: ShortLivedStore, *, browser: str, actor: Actor,
                 student_id: str) -> CardIdentity | None:
    """As :func:`pending`, used up: one confirmation per tapped card."""
    record = store.take(_pending_key(browser, actor))
    return _identity(record, student_id)


def _identity(record: dict[str, Any] | None, student_id: str) -> CardIdentity | None:
    if not record or record.get("student_id") != student_id:
        return None
    try:
        return CardIdentity.from_pending(record.get("card") or {})
    except CardError:
        return None


def link(db: Session, actor: Actor, student_id: str, card: CardIdentity, *,
         ip: str | None, store: ShortLivedStore) -> CardBinding:
    """Bind the confirmed card, re-checking everything: the staff member's right (a role
    changed since?), the student's state, and the card's (linked meanwhile?). Putting a
    replaced card back also ends the student's sessions (``store``): whoever signed in with
    the card that had knocked it out is signed out."""
    student = load_student(db, actor, student_id)
    if student.id == actor.account_id:  # cannot happen (students are not staff); belt
        raise Forbidden("nobody links a card to themselves here")
    existing = find_binding(db, card.issuer, card.serial)
    if reinstates(existing, student, card):
        binding = reinstate_binding(db, student, existing, actor=actor.account_id, ip=ip,
                                    assisted_by=actor.account_id)
        end_account_sessions(store, student.id)
        return binding
    if existing is not None:
        code = "already_linked" if existing.account_id == student.id else \
            "card_linked_elsewhere"
        raise refuse(db, actor, student, code, code, ip=ip, binding_id=existing.id,
                     serial=card.serial)
    return bind_card(db, student, card, ip=ip, actor=actor.account_id,
                     assisted_by=actor.account_id)


def reinstates(existing: CardBinding | None, student: Account, card: CardIdentity) -> bool:
    """Whether confirming ``card`` puts the student's own replaced card back."""
    return existing is not None and existing.account_id == student.id and \
        existing.status == REPLACED and existing.certificate_sha256 == card.certificate_sha256


def is_reinstatement(db: Session, student: Account, card: CardIdentity) -> bool:
    """What the confirmation page says: the card goes back (it was replaced), or is new."""
    return reinstates(find_binding(db, card.issuer, card.serial), student, card)
