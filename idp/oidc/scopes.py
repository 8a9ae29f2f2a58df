"""Scopes and the claims they release (the acr/amr values are in :mod:`idp.signin.context`).

Students' data is minimal on purpose: an app gets a pseudonymous ``sub`` with ``openid``
alone, and a name or school details only for the scopes it was allowed and the student saw.
"""

from __future__ import annotations

from typing import Any

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

