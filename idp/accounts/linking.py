"""The card-linking ceremony: a card verified but linked to nothing, and the one sign-in that
may join it to an account.

A verified card proves nothing about *which* account it belongs to until it is linked, so:

- the pending card belongs to the one login transaction (and browser session) it was tapped
  in, and to the login page that carries its id; a new authorization request, a sign-out or
  five minutes drop it (:func:`new_pending`, :func:`visible_pending`);
- the password sign-in that links it is a password-level sign-in, and linking happens only
  when the person confirms on a page naming the account (:func:`offer`, :func:`link`);
- an admin account links a card only after TOTP in the same sign-in, and only such a binding
  stands in for TOTP later (:func:`card_stands_in_for_totp`).

Nothing here imports Flask: the views hand in the session's record, the ids and the clock.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from idp.accounts.cards import (
    ACTIVE,
    CardIdentity,
    active_card_count,
    bind_card,
    binding_status,
    check_bindable,
)
from idp.accounts.roles import ADMIN_ROLES
from idp.audit import audit
from idp.store.models import Account, CardBinding, utcnow

PENDING_CARD_TTL = 300  # seconds a tapped, unlinked card waits for its password sign-in
SESSION_KEY = "pending_card"


@dataclass(frozen=True)
class LinkOffer:
    """What the confirmation page shows: the account the card would join, by name."""

    account_id: str
    school_name: str
    login_id: str
    display_name: str
    other_cards: int  # active cards the account has already
    needs_mfa: bool  # an admin account: only after TOTP in this sign-in

    @property
    def second_card(self) -> bool:
        return self.other_cards > 0


def new_pending(card_record: dict[str, Any], *, txn_id: str | None, now: float
                ) -> dict[str, Any]:
    """The session record of a card just verified and linked to nothing, tied to the login
    transaction it was tapped in and given its own id (the login page must carry it)."""
    return {**card_record, "id": secrets.token_urlsafe(12), "txn": txn_id or None, "at": now}


def is_fresh(stored: Any, now: float) -> bool:
    return isinstance(stored, dict) and isinstance(stored.get("at"), int | float) and \
        0 <= now - stored["at"] <= PENDING_CARD_TTL


def visible_pending(stored: Any, *, txn_id: str | None, card_id: str | None, now: float
                    ) -> dict[str, Any] | None:
    """The pending card if this request may see it: same transaction (or both none), the
    card id the page was given, within five minutes. Another transaction, another login page
    or a later visitor of the same browser sees nothing."""
    if not is_fresh(stored, now) or stored.get("txn") != (txn_id or None):
        return None
    if not isinstance(card_id, str) or not hmac.compare_digest(
            card_id.encode(), str(stored.get("id", "")).encode()):
        return None
    return stored


def needs_mfa(account: Account) -> bool:
    """Admin accounts link a card only in a sign-in that passed TOTP."""
    return account.role in ADMIN_ROLES


def offer(db: Session, account: Account, pending: dict[str, Any], *, ip: str) -> LinkOffer:
    """Check (audited, raised as CardError) that the pending card may join ``account`` and
    describe the offer; nothing is bound yet."""
    check_bindable(db, account, CardIdentity.from_pending(pending), ip=ip, actor="password")
    return LinkOffer(account.id, account.school.name, account.login_id,
                     account.display_name or "", active_card_count(db, account.id),
                     needs_mfa(account))


def may_confirm(pending: dict[str, Any], *, account_id: str | None, sid: str | None,
                admin_mfa: str | None) -> bool:
    """Whether the signed-in person may press つなぐ for this pending card: the offer was
    made to this account in this very sign-in (``sid``); an admin's only after TOTP."""
    made = pending.get("offer")
    if not isinstance(made, dict) or not account_id or not sid:
        return False
    if made.get("account_id") != account_id or made.get("sid") != sid:
        return False
    return not made.get("needs_mfa") or admin_mfa == "totp"


def after_totp(pending: dict[str, Any], admin_mfa: str | None) -> bool:
    """The offer was made after TOTP in this sign-in (an admin's link needs it, and only
    such a binding is marked ``linked_with_mfa``)."""
    made = pending.get("offer")
    return isinstance(made, dict) and bool(made.get("needs_mfa")) and admin_mfa == "totp"


def make_offer(pending: dict[str, Any], *, account_id: str, sid: str, mfa: bool) -> None:
    pending["offer"] = {"account_id": account_id, "sid": sid, "needs_mfa": mfa}


def link(db: Session, account: Account, pending: dict[str, Any], *, ip: str,
         with_mfa: bool) -> CardBinding:
    """Bind the confirmed card (raises CardError, audited, when it may not be bound)."""
    binding = bind_card(db, account, CardIdentity.from_pending(pending), ip=ip,
                        actor="password+totp" if with_mfa else "password",
                        linked_with_mfa=with_mfa)
    binding.last_used_at = utcnow()
    return binding


def decline(db: Session, account: Account, pending: dict[str, Any], *, ip: str) -> None:
    audit(db, "card.link_declined", account_id=account.id, school_id=account.school_id,
          ip=ip, serial=str(pending.get("serial", ""))[:80])


def card_stands_in_for_totp(db: Session, account_id: str, binding_id: Any) -> bool:
    """A card sign-in replaces an admin's TOTP only when its binding, still active and this
    account's, was linked under TOTP: a card linked with a known password alone must not
    become a password-only way into the admin area."""
    if not isinstance(binding_id, str) or len(binding_id) > 32:
        return False
    binding = db.get(CardBinding, binding_id)
    return bool(binding is not None and binding.account_id == account_id
                and binding.linked_with_mfa and binding_status(binding) == ACTIVE)
