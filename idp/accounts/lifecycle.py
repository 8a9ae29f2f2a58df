"""An account through the school year: active → graduated → deactivated. Flask-free.

* **active**: a pupil or teacher; every app the school uses.
* **graduated** (at the year-end promotion, :mod:`idp.admin.school_year`): the account
  still signs in, but only to the apps an admin marked ``allow_graduates``, and only for the
  school's ``graduate_grace_days`` after graduation. Every other app is refused at the
  authorization endpoint, the token endpoint (code and refresh), UserInfo and introspection
  (:func:`may_use_client`), so a session or a refresh token from before graduation reaches
  nothing it should not.
* **deactivated** (by :func:`run`, the cron-able ``idp school lifecycle run``, once the
  grace period is over): the account no longer signs in anywhere. Retention on
  deactivation (:func:`deactivate_graduate`):

  - *kept*: the account row (its id is the root of every pairwise ``sub``: if the person
    comes back, e.g. is re-enrolled, every app sees the same ``sub``), the login id, name,
    school, last grade and class (the school's record of who was a pupil), the disclosure
    history (what each app received, which the person may ask to see) and the audit log
    (evidence, purged only by the audit retention setting);
  - *dropped*: the password hash and the TOTP secret (nothing can sign in with them any
    more), every card binding (the certificate's issuer, serial and hash are personal data
    with no purpose once the account cannot sign in, and the card is free to be linked
    elsewhere), the consents (they authorise apps the account no longer reaches), every
    token and IdP session (revoked at once).

The status is :attr:`Account.status`; ``Account.active`` stays the one switch the sign-in
and token checks read, False exactly when the account is deactivated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp.accounts.access import revoke_account_tokens
from idp.audit import audit
from idp.store.models import Account, CardBinding, Consent, School, utcnow

ACTIVE = "active"
GRADUATED = "graduated"
DEACTIVATED = "deactivated"
STATUSES = (ACTIVE, GRADUATED, DEACTIVATED)


def status_of(account: Any) -> str:
    """The account's status as apps and admins see it (an account switched off by a roster
    import or an admin reads as deactivated whatever its column says)."""
    if not account.active:
        return DEACTIVATED
    return GRADUATED if account.status == GRADUATED else ACTIVE


def graduate_access_ends(account: Any) -> datetime | None:
    """When a graduate's access to the graduates' apps ends (None: not a graduate)."""
    if status_of(account) != GRADUATED or account.graduated_at is None:
        return None
    return account.graduated_at + timedelta(days=account.school.graduate_grace_days)


def may_use_client(account: Any, client_row: Any, now: datetime | None = None) -> bool:
    """Whether this (active, unlocked) account may use this app now: everyone active may;
    a graduate only an app that allows graduates, within the grace period."""
    status = status_of(account)
    if status == ACTIVE:
        return True
    if status == DEACTIVATED or not getattr(client_row, "allow_graduates", False):
        return False
    ends = graduate_access_ends(account)
    return ends is not None and (now or utcnow()) < ends


def graduate(db: Session, account: Account, *, actor: str | None, now: datetime,
             batch_id: str) -> None:
    """Mark a pupil graduated (the caller's unit of work commits it)."""
    account.status = GRADUATED
    account.graduated_at = now
    audit(db, "account.graduated", actor=actor, account_id=account.id,
          school_id=account.school_id, batch=batch_id, grade=account.grade)


def deactivate_graduate(db: Session, account: Account, *, actor: str | None,
                        end_sessions: Any) -> dict[str, int]:
    """End a graduate's account, applying the retention rules of the module docstring.
    ``end_sessions(account_id)`` ends the person's IdP sessions (the short-lived store)."""
    cards = db.execute(delete(CardBinding).where(CardBinding.account_id == account.id)).rowcount
    consents = db.execute(delete(Consent).where(Consent.account_id == account.id)).rowcount
    account.status = DEACTIVATED
    account.active = False
    account.password_hash = None
    account.totp_secret = None
    families = revoke_account_tokens(db, account.id, "graduate_deactivated", actor=actor)
    sessions = end_sessions(account.id)
    audit(db, "account.deactivated", actor=actor, account_id=account.id,
          school_id=account.school_id, via="lifecycle", reason="graduate_grace_over",
          cards_removed=cards, consents_removed=consents, token_families=families)
    return {"cards": cards, "consents": consents, "token_families": families,
            "sessions": sessions}


@dataclass(frozen=True)
class LifecycleAction:
    account_id: str
    school_code: str
    login_id: str
    graduated_at: datetime
    access_ended: datetime
    removed: dict[str, int]


def due_for_deactivation(db: Session, now: datetime,
                         school_id: str | None = None) -> list[tuple[Account, datetime]]:
    """Graduates whose grace period is over (strictly before ``now``), oldest first."""
    stmt = (select(Account).join(School, School.id == Account.school_id)
            .where(Account.status == GRADUATED, Account.active.is_(True),
                   Account.graduated_at.is_not(None))
            .order_by(Account.graduated_at, Account.id))
    if school_id is not None:
        stmt = stmt.where(Account.school_id == school_id)
    due = []
    for account in db.scalars(stmt):
        ends = graduate_access_ends(account)
        if ends is not None and ends <= now:
            due.append((account, ends))
    return due


def run(db: Session, *, end_sessions: Any, now: datetime | None = None,
        school_id: str | None = None, dry_run: bool = False,
        actor: str | None = None) -> list[LifecycleAction]:
    """Deactivate every graduate past the grace period (idempotent: a second run finds
    none). ``dry_run`` only lists them."""
    moment = now or utcnow()
    actions = []
    for account, ends in due_for_deactivation(db, moment, school_id):
        removed = {} if dry_run else deactivate_graduate(db, account, actor=actor,
                                                         end_sessions=end_sessions)
        actions.append(LifecycleAction(account.id, account.school.code, account.login_id,
                                       account.graduated_at, ends, removed))
    if actions and not dry_run:
        audit(db, "lifecycle.run", actor=actor, school_id=school_id,
              deactivated=len(actions))
    return actions
