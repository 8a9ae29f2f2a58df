"""The claims this provider releases about a person, and the record of each release.

The one place that decides what an app learns: the ID token, UserInfo and introspection all
take their person claims from here, and every release of more than the pseudonymous ``sub``
is written to the disclosure history the student sees on the account page: ONE row per
sign-in at an app, written where the sign-in's claims are handed over (the code exchange,
:mod:`idp.oidc.grants`); a refresh or a UserInfo call within that sign-in adds none. Students' data
is minimal on purpose: an app gets a pairwise ``sub`` with ``openid`` alone, and a name or
school details only for the scopes it was allowed and the student agreed to.

A new claim is one entry in :data:`idp.scopes.SCOPE_CLAIMS` plus its value in
:func:`user_claims`
(discovery's ``claims_supported`` follows).
"""

from __future__ import annotations

from typing import Any

from idp.accounts.lifecycle import status_of
from idp.event_log import EventLog
from idp.pairwise import pairwise_sub
from idp.scopes import SCOPE_CLAIMS

# How a release reached the app (Disclosure.via). Since one row is one sign-in, new rows
# are always VIA_ID_TOKEN; VIA_USERINFO is kept because older rows carry it.
VIA_ID_TOKEN = "id_token"
VIA_USERINFO = "userinfo"


def subject_for(pairwise_secret: str, client_row: Any, account_id: str) -> str:
    """The person's ``sub`` at this client: pairwise per sector, so two apps cannot join
    what they know about a student by ``sub``."""
    return pairwise_sub(pairwise_secret, client_row.sector, account_id)


def claims_for_scopes(scopes: list[str]) -> list[str]:
    """The names of the person claims (beyond ``sub``) the scopes release."""
    return [c for s in scopes for c in SCOPE_CLAIMS.get(s, []) if c != "sub"]


def user_claims(account: Any, scopes: list[str]) -> dict[str, Any]:
    """The released claims (without ``sub``) for an account under the granted scopes."""
    claims: dict[str, Any] = {}
    if "profile" in scopes:
        claims["name"] = account.display_name or account.login_id
    if "school" in scopes:
        claims.update(school_code=account.school.code, school_name=account.school.name,
                      grade=account.grade or None, class_name=account.class_name or None,
                      homeroom=account.class_name or None, role=account.role,
                      status=status_of(account))
    return {k: v for k, v in claims.items() if v is not None}


def release(pairwise_secret: str, client_row: Any, account: Any,
            scopes: list[str]) -> dict[str, Any]:
    """``sub`` and the person claims for the granted scopes (ID token and UserInfo)."""
    claims = {"sub": subject_for(pairwise_secret, client_row, account.id)}
    claims.update(user_claims(account, scopes))
    return claims


def record_disclosure(events: EventLog, *, account_id: str, client_id: str,
                      scopes: list[str], via: str) -> None:
    """Write the release to the student's disclosure history, through the event log
    (nothing for ``sub`` alone: it tells the app nothing about the person)."""
    released = claims_for_scopes(scopes)
    if released:
        events.disclosure(account_id=account_id, client_id=client_id, claims=released,
                          via=via)


def userinfo_claims(pairwise_secret: str, client_row: Any, account: Any,
                    scopes: list[str]) -> dict[str, Any]:
    """The UserInfo answer. Not recorded again: it is what the sign-in that issued the token
    already released (recorded once, at the code exchange, in :mod:`idp.oidc.grants`), so
    the student's page shows one row per sign-in at an app, not one per call the app makes
    with the same tokens."""
    return release(pairwise_secret, client_row, account, scopes)


def introspection_claims(pairwise_secret: str, client_row: Any,
                         account_id: str) -> dict[str, Any]:
    """Introspection tells the token's own client only whose token it is (``sub``), never the
    person claims (those go through UserInfo, where they are recorded)."""
    return {"sub": subject_for(pairwise_secret, client_row, account_id)}
