"""The consent page's guardian step: whether the signed-in person may say yes alone, and the
request to a guardian when not. Flask-free; :mod:`idp.auth.login_views` calls it.

Why a request and not the guardian signing in here: the consent page is often on a shared
school PC or the child's tablet. Signing a guardian in on it would leave a guardian's
session (which can approve anything for the child) on a device the child keeps using, and
would teach children to ask for a parent's password. So the child only *asks*; a linked
guardian answers from their own page on their own device (``/account/children``), and the
child opens the app again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts import guardians
from idp.japan_time import japan_today
from idp.store.models import Account, Consent, GuardianRequest, School


@dataclass
class GuardianStep:
    need: guardians.Need
    pending: GuardianRequest | None
    new_scopes: list[str]
    declined: bool = False  # the last answer to this app was no (the child may ask again)


def guardian_step(db: Session, account_id: str, client_id: str, scopes: list[str]
                  ) -> GuardianStep:
    account = db.get(Account, account_id)
    granted = db.scalar(select(Consent.scopes).where(Consent.account_id == account_id,
                                                     Consent.client_id == client_id))
    new = [s for s in scopes if s not in set(granted or [])]
    if new and guardians.GUARDIAN_SCOPE in scopes and guardians.GUARDIAN_SCOPE not in new:
        # The app relies on "guardian" in the granted scope meaning a guardian agreed to all
        # of it: anything added later needs a guardian too.
        new.append(guardians.GUARDIAN_SCOPE)
    school = db.get(School, account.school_id)
    need = guardians.guardian_need(
        account, age_limit=school.guardian_consent_age, scopes=set(new),
        has_guardian=guardians.has_guardian(db, account_id), today=japan_today())
    if need != guardians.Need.GUARDIAN:
        return GuardianStep(need, None, new)
    pending = guardians.pending_request(db, account_id, client_id)
    last = db.scalar(select(GuardianRequest.status).where(
        GuardianRequest.child_id == account_id, GuardianRequest.client_id == client_id,
        GuardianRequest.decided_at.is_not(None))
        .order_by(GuardianRequest.decided_at.desc()).limit(1))
    return GuardianStep(need, pending, new, declined=pending is None and last == "declined")
