"""What the student's page shows and changes. No Flask here: views call these."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp.accounts.access import revoke_account_tokens
from idp.accounts.cards import ACTIVE, REPLACED, binding_status
from idp.accounts.codes import find_reset_code
from idp.accounts.roles import ADMIN_ROLES
from idp.audit import audit
from idp.japan_time import japan_date
from idp.oidc.tokens import revoke_client_account_tokens
from idp.signin.context import ACR_CARD, AuthContext
from idp.signin.passwords import hash_password, verify_password
from idp.store.models import (
    Account,
    AccountTransfer,
    CardBinding,
    Client,
    Consent,
    Disclosure,
    School,
    utcnow,
)
from idp.store.shortlived import ShortLivedStore

HISTORY_PER_APP = 20
#: Seconds after a card sign-in during which the card alone may set a new password: long
#: enough to type a new password twice, short enough that a browser left signed in at a
#: shared PC is no longer a key to the account.
CARD_RECOVERY_WINDOW = 300


@dataclass
class AppUse:
    client_id: str
    name: str
    logo_uri: str | None
    scopes: list[str]
    granted_at: datetime
    enabled: bool
    history: list[Disclosure] = field(default_factory=list)


def apps_in_use(db: Session, account_id: str) -> list[AppUse]:
    """Each app the student said yes to, with what it received and when (newest first)."""
    rows = db.execute(select(Consent, Client).join(Client, Client.client_id == Consent.client_id)
                      .where(Consent.account_id == account_id)
                      .order_by(Consent.granted_at.desc())).all()
    apps = []
    for consent, client in rows:
        history = list(db.scalars(select(Disclosure).where(
            Disclosure.account_id == account_id, Disclosure.client_id == client.client_id)
            .order_by(Disclosure.at.desc()).limit(HISTORY_PER_APP)))
        apps.append(AppUse(client.client_id, client.name, client.logo_uri,
                           list(consent.scopes or []), consent.granted_at, client.enabled,
                           history))
    return apps


def withdraw_consent(db: Session, account_id: str, client_id: str) -> bool:
    """Forget the "yes" and stop every token that app holds for this student, at once."""
    found = db.execute(delete(Consent).where(Consent.account_id == account_id,
                                             Consent.client_id == client_id)).rowcount
    if not found:
        return False
    revoke_client_account_tokens(db, client_id, account_id, "consent_withdrawn")
    audit(db, "consent.withdrawn", actor=account_id, account_id=account_id,
          client_id=client_id)
    return True


@dataclass
class SchoolMove:
    from_school: str
    to_school: str
    on: str  # the day in Japan time, YYYY-MM-DD


def school_moves(db: Session, account_id: str) -> list[SchoolMove]:
    """The schools the student moved between (idp.admin.transfers), newest first."""
    rows = db.scalars(select(AccountTransfer).where(
        AccountTransfer.account_id == account_id, AccountTransfer.status == "completed")
        .order_by(AccountTransfer.decided_at.desc()))
    return [SchoolMove(row.from_school.name, row.to_school.name, japan_date(row.decided_at))
            for row in rows if row.decided_at is not None]


@dataclass(frozen=True)
class MyCard:
    """One card binding as the student's page shows it (dates in Japan time)."""

    id: str
    linked_on: str
    valid_until: str
    status: str  # active | expired | revoked | replaced
    replaced_on: str | None
    replaced_by: str | None  # the id of the card that took its place


def my_cards(db: Session, account_id: str) -> list[MyCard]:
    rows = db.scalars(select(CardBinding).where(CardBinding.account_id == account_id)
                      .order_by(CardBinding.created_at.desc()))
    return [MyCard(row.id, japan_date(row.created_at) or "", japan_date(row.not_after) or "",
                   binding_status(row), japan_date(row.replaced_at),
                   row.replaced_by_id if row.status == REPLACED else None) for row in rows]


class PasswordChangeError(ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code  # wrong_current | mismatch | too_short | too_long | too_common


def change_password(db: Session, account: Account, current: str, new: str, repeat: str
                    ) -> None:
    if account.password_hash is None or not verify_password(account.password_hash, current):
        raise PasswordChangeError("wrong_current")
    _set_password(db, account, new, repeat, event="account.password_changed",
                  reason="password_changed")


def set_first_password(db: Session, account: Account, new: str, repeat: str) -> None:
    """The student's own password in place of the first one on the teacher's slip (the
    sign-in a moment ago proved the first one). Raises PasswordChangeError: "not_first"
    when there is no first password to replace, "same_as_first" for the slip's password."""
    if not account.must_change_password or account.password_hash is None:
        raise PasswordChangeError("not_first")
    if verify_password(account.password_hash, new):
        raise PasswordChangeError("same_as_first")
    _set_password(db, account, new, repeat, event="account.first_password_changed",
                  reason="first_password_changed")


def redeem_reset_code(db: Session, school_code: str, login_id: str, code: str, new: str,
                      repeat: str) -> Account:
    """Set a password with a one-time code. Raises PasswordChangeError("bad_code") for an
    unknown account or a wrong/used/expired code alike."""
    account = db.scalar(select(Account).join(School).where(
        School.code == school_code, Account.login_id == login_id))
    row = find_reset_code(db, account.id, code) if account is not None else None
    if account is None or row is None or not account.active:
        raise PasswordChangeError("bad_code")
    _set_password(db, account, new, repeat, event="account.password_reset",
                  reason="password_reset")
    row.used_at = utcnow()
    return account


def _set_password(db: Session, account: Account, new: str, repeat: str, *, event: str,
                  reason: str, **details: Any) -> None:
    """The new password (typed twice, within the policy) replaces the old one, and every
    token the account's apps hold ends with it."""
    from idp.signin.passwords import PasswordPolicyError

    if new != repeat:
        raise PasswordChangeError("mismatch")
    try:
        account.password_hash = hash_password(new, login_id=account.login_id)
    except PasswordPolicyError as exc:
        raise PasswordChangeError(exc.code) from exc
    account.must_change_password = False  # chosen by the student now, whichever way
    revoke_account_tokens(db, account.id, reason, actor=account.id)
    audit(db, event, actor=account.id, account_id=account.id, school_id=account.school_id,
          **details)


# ----------------------------------------------------------------------------- by card
def _recovery_key(account_id: str, sid: str) -> str:
    """One card sign-in (its ``sid``, kept after the password is set) sets one password:
    the claim's key."""
    return f"cardpw:{account_id}:{sid}"


def card_proof_problem(db: Session, store: ShortLivedStore, account: Account,
                       auth: AuthContext, binding_id: Any, *, now: float) -> str | None:
    """Why this sign-in may *not* set a new password with the card alone, or ``None``.

    The card is the proof, so it must be fresh and the account's own: this session signed in
    with a card (acr and amr say so) at most :data:`CARD_RECOVERY_WINDOW` seconds ago, with a
    binding that is this account's and still signs in (not revoked, replaced or expired),
    and this card sign-in has not set a password yet (one card sign-in, one new password).
    An admin's card counts only when it was linked under TOTP, as for the admin area (a
    card linked with a known password must not become a way around TOTP)."""
    if auth.acr != ACR_CARD or "sc" not in auth.amr:
        return "not_card"
    if not 0 <= now - auth.auth_time <= CARD_RECOVERY_WINDOW:
        return "stale"
    binding = db.get(CardBinding, binding_id) \
        if isinstance(binding_id, str) and len(binding_id) <= 32 else None
    if binding is None or binding.account_id != account.id or \
            binding_status(binding) != ACTIVE:
        return "card_gone"
    if account.role in ADMIN_ROLES and not binding.linked_with_mfa:
        return "admin_card_without_totp"
    if store.get(_recovery_key(account.id, auth.sid)) is not None:
        return "spent"
    return None


def set_password_by_card(db: Session, store: ShortLivedStore, account: Account,
                         auth: AuthContext, binding_id: Any, new: str, repeat: str, *,
                         now: float, ip: str) -> None:
    """A new password with no old one, proven by a fresh card sign-in
    (:func:`card_proof_problem`, checked again here in the same unit of work as the change).
    The same policy and the same ending of every app token as a change on this page
    (:func:`_set_password`). Raises :class:`PasswordChangeError` with the proof's code, or
    the policy's (which spends nothing: the student may try another password).

    The card sign-in is spent by one atomic claim in the shared store once the new password
    passed the policy, so two forms posted at the same moment (or to two servers) set one
    password, not two."""
    problem = card_proof_problem(db, store, account, auth, binding_id, now=now)
    if problem is not None:
        raise PasswordChangeError(problem)
    _set_password(db, account, new, repeat, event="account.password_set_by_card",
                  reason="password_set_by_card", binding_id=binding_id, ip=ip)
    claimed = store.put_if_absent(_recovery_key(account.id, auth.sid), {"at": now},
                                  CARD_RECOVERY_WINDOW + 60)
    if not claimed:
        raise PasswordChangeError("spent")


def audit_card_refusal(db: Session, account: Account, code: str, *, ip: str) -> None:
    audit(db, "account.password_set_by_card", outcome="refused", actor=account.id,
          account_id=account.id, school_id=account.school_id, reason=code, ip=ip)
