"""What the student's page shows and changes. No Flask here: views call these."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp.accounts.access import revoke_account_tokens
from idp.accounts.cards import card_status
from idp.accounts.codes import find_reset_code
from idp.audit import audit
from idp.oidc.tokens import revoke_client_account_tokens
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

HISTORY_PER_APP = 20
JAPAN = timezone(timedelta(hours=9), "JST")


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


def japan_date(moment: datetime) -> str:
    """A stored (naive UTC) moment as the day it was in Japan."""
    return moment.replace(tzinfo=UTC).astimezone(JAPAN).strftime("%Y-%m-%d")


def school_moves(db: Session, account_id: str) -> list[SchoolMove]:
    """The schools the student moved between (idp.admin.transfers), newest first."""
    rows = db.scalars(select(AccountTransfer).where(
        AccountTransfer.account_id == account_id, AccountTransfer.status == "completed")
        .order_by(AccountTransfer.decided_at.desc()))
    return [SchoolMove(row.from_school.name, row.to_school.name, japan_date(row.decided_at))
            for row in rows if row.decided_at is not None]


def my_cards(db: Session, account_id: str) -> list[tuple[CardBinding, str]]:
    rows = db.scalars(select(CardBinding).where(CardBinding.account_id == account_id)
                      .order_by(CardBinding.created_at.desc()))
    return [(row, card_status(row)) for row in rows]


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
                  reason: str) -> None:
    """The new password (typed twice, within the policy) replaces the old one, and every
    token the account's apps hold ends with it."""
    from idp.signin.passwords import PasswordPolicyError

    if new != repeat:
        raise PasswordChangeError("mismatch")
    try:
        account.password_hash = hash_password(new, login_id=account.login_id)
    except PasswordPolicyError as exc:
        raise PasswordChangeError(exc.code) from exc
    revoke_account_tokens(db, account.id, reason, actor=account.id)
    audit(db, event, actor=account.id, account_id=account.id, school_id=account.school_id)
