"""What a guardian's page shows and changes, for the children the school linked to them.
No Flask here: :mod:`idp.account.guardian_views` calls these."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.account.my_page import AppUse, apps_in_use
from idp.accounts import guardians
from idp.accounts.roles import GUARDIAN
from idp.audit import audit
from idp.oidc.tokens import revoke_client_account_tokens
from idp.store.models import Account, Consent


@dataclass
class ChildView:
    child: Account
    apps: list[AppUse]


def children_with_apps(db: Session, guardian_id: str) -> list[ChildView]:
    return [ChildView(child, apps_in_use(db, child.id))
            for child in guardians.children_of(db, guardian_id)]


def withdraw_for_child(db: Session, guardian: Account, child_id: str, client_id: str) -> bool:
    """The guardian takes back a child's yes to an app: that app's tokens for the child stop
    at once. Only for a child linked to this guardian (anyone else: False, as unknown)."""
    child = guardians.child_of(db, guardian.id, child_id)
    if child is None or guardian.role != GUARDIAN:
        return False
    row = db.scalar(select(Consent).where(Consent.account_id == child.id,
                                          Consent.client_id == client_id))
    if row is None:
        return False
    db.delete(row)
    revoke_client_account_tokens(db, client_id, child.id, "consent_withdrawn")
    audit(db, "consent.withdrawn", actor=guardian.id, account_id=child.id,
          school_id=child.school_id, client_id=client_id, by="guardian")
    return True
