"""Error type of the JPKI verification core.

Every refusal of a card sign-in is a :class:`CardError` whose ``code`` is one short, stable
string.  The web layer maps codes to user-facing messages and audit events, so the set of
codes is closed: callers can rely on ``err.code in CODES``.  The message is for logs and
operators (English, no personal data — the certificates involved carry none anyway).
"""

from __future__ import annotations

from typing import Final

#: The complete set of codes.  Kept in one place so the web layer can test its mapping.
CODES: Final[frozenset[str]] = frozenset(
    {
        "invalid_request",
        "challenge_expired",
        "challenge_not_found",
        "signature_invalid",
        "certificate_untrusted",
        "certificate_expired",
        "certificate_not_yet_valid",
        "certificate_revoked",
        "revocation_unavailable",
        "card_not_linked",
        "card_linked_elsewhere",
        "card_replaced",
    }
)


class CardError(Exception):
    """A card sign-in was refused; ``code`` says why in machine-readable form."""

    code: str
    message: str

    def __init__(self, code: str, message: str | None = None) -> None:
        if code not in CODES:
            # A typo in a code would silently fall through the web layer's mapping.
            raise ValueError(f"unknown CardError code {code!r}")
        self.code = code
        self.message = message or code.replace("_", " ")
        super().__init__(f"{code}: {self.message}")

    def __repr__(self) -> str:
        return f"CardError({self.code!r}, {self.message!r})"

    def __reduce__(self):  # keep pickling (e.g. multiprocessing, caches) working
        return (type(self), (self.code, self.message))
