"""Scopes, the claims they release, and the acr/amr values this provider asserts.

Students' data is minimal on purpose: an app gets a pseudonymous ``sub`` with ``openid``
alone, and a name or school details only for the scopes it was allowed and the student saw.
"""

from __future__ import annotations

from typing import Any

ACR_PASSWORD = "urn:mynagate:acr:password"
ACR_CARD = "urn:mynagate:acr:mynumber-card"
# Higher is stronger; a client asking for the card level is never given a password sign-in.
ACR_LEVELS = {ACR_PASSWORD: 1, ACR_CARD: 2}
AMR_PASSWORD = ["pwd"]
AMR_CARD = ["sc", "pin", "hwk"]  # RFC 8176: smart card, PIN, hardware-bound key

SCOPE_CLAIMS: dict[str, list[str]] = {
    "openid": ["sub"],
    "profile": ["name"],
    "school": ["school_code", "school_name", "grade", "class_name", "role"],
    "offline_access": [],
}
SUPPORTED_SCOPES = list(SCOPE_CLAIMS)
ID_TOKEN_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "auth_time", "acr", "amr", "sid",
                   "nonce", "azp", "at_hash"]
CLAIMS_SUPPORTED = sorted({c for cs in SCOPE_CLAIMS.values() for c in cs} | set(ID_TOKEN_CLAIMS))


def claims_for_scopes(scopes: list[str]) -> list[str]:
    return [c for s in scopes for c in SCOPE_CLAIMS.get(s, []) if c != "sub"]


def user_claims(account: Any, scopes: list[str]) -> dict[str, Any]:
    """The released claims (without ``sub``) for an account under the granted scopes."""
    claims: dict[str, Any] = {}
    if "profile" in scopes:
        claims["name"] = account.display_name or account.login_id
    if "school" in scopes:
        claims.update(school_code=account.school.code, school_name=account.school.name,
                      grade=account.grade or None, class_name=account.class_name or None,
                      role=account.role)
    return {k: v for k, v in claims.items() if v is not None}


def acr_satisfies(acr: str, requested: list[str]) -> bool:
    """Whether a sign-in at ``acr`` meets any of the requested acr values (unknown values
    are ignored as voluntary claims are, OIDC Core §5.5.1.1)."""
    known = [r for r in requested if r in ACR_LEVELS]
    if not known:
        return True
    return ACR_LEVELS.get(acr, 0) >= min(ACR_LEVELS[r] for r in known)
