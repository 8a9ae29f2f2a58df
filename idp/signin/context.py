"""How someone signed in, in words both the protocol (``oidc/``) and the sign-in pages use:
the auth context carried into codes and token families, the signed-in user, the acr/amr
values this provider asserts and the rule comparing them. Flask-free."""

from __future__ import annotations

from dataclasses import dataclass

from idp.store.models import Account

ACR_PASSWORD = "urn:mynagate:acr:password"
ACR_CARD = "urn:mynagate:acr:mynumber-card"
# Higher is stronger; a client asking for the card level is never given a password sign-in.
ACR_LEVELS = {ACR_PASSWORD: 1, ACR_CARD: 2}
AMR_PASSWORD = ["pwd"]
AMR_CARD = ["sc", "pin", "hwk"]  # RFC 8176: smart card, PIN, hardware-bound key


@dataclass(frozen=True)
class AuthContext:
    """How and when the person signed in: carried from the session into codes and families."""

    auth_time: int
    acr: str
    amr: list[str]
    sid: str


@dataclass
class SignedInUser:
    """The grant user: an account plus how this browser session signed in."""

    account: Account
    auth: AuthContext

    def get_user_id(self) -> str:
        return self.account.id


def acr_satisfies(acr: str, requested: list[str]) -> bool:
    """Whether a sign-in at ``acr`` meets any of the requested acr values (unknown values
    are ignored as voluntary claims are, OIDC Core §5.5.1.1)."""
    known = [r for r in requested if r in ACR_LEVELS]
    if not known:
        return True
    return ACR_LEVELS.get(acr, 0) >= min(ACR_LEVELS[r] for r in known)
