"""The acr/amr values this provider asserts, and which level meets a request.

The scopes and the claims they release are in :mod:`idp.oidc.claims`.
"""

from __future__ import annotations

ACR_PASSWORD = "urn:mynagate:acr:password"
ACR_CARD = "urn:mynagate:acr:mynumber-card"
# Higher is stronger; a client asking for the card level is never given a password sign-in.
ACR_LEVELS = {ACR_PASSWORD: 1, ACR_CARD: 2}
AMR_PASSWORD = ["pwd"]
AMR_CARD = ["sc", "pin", "hwk"]  # RFC 8176: smart card, PIN, hardware-bound key


def acr_satisfies(acr: str, requested: list[str]) -> bool:
    """Whether a sign-in at ``acr`` meets any of the requested acr values (unknown values
    are ignored as voluntary claims are, OIDC Core §5.5.1.1)."""
    known = [r for r in requested if r in ACR_LEVELS]
    if not known:
        return True
    return ACR_LEVELS.get(acr, 0) >= min(ACR_LEVELS[r] for r in known)
