"""The scopes a client may ask for and the claims each one releases: the vocabulary that the
client registry, discovery, the admin forms and the claims release (idp.oidc.claims) share.
It sits at the bottom so the registry can check scopes without importing the protocol."""

from __future__ import annotations

SCOPE_CLAIMS: dict[str, list[str]] = {
    "openid": ["sub"],
    "profile": ["name"],
    # ``homeroom`` is the homeroom class (``class_name`` is its older name, kept for the apps
    # that read it); ``status`` is active or graduated (idp.accounts.lifecycle).
    "school": ["school_code", "school_name", "grade", "class_name", "homeroom", "role",
               "status"],
    "offline_access": [],
    # A guardian confirms the app for the child (idp.accounts.guardians); releases no claim:
    # the app learns only that the granted scope includes ``guardian``, never who said yes.
    "guardian": [],
}
SUPPORTED_SCOPES = list(SCOPE_CLAIMS)
ID_TOKEN_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "auth_time", "acr", "amr", "sid",
                   "nonce", "azp", "at_hash"]
CLAIMS_SUPPORTED = sorted({c for cs in SCOPE_CLAIMS.values() for c in cs} | set(ID_TOKEN_CLAIMS))
