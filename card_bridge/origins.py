"""Origin and challenge checks shared by the loopback server and the pairing flow, and the
name of the site a PIN is typed for (card_bridge.pin, card_bridge.events)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

CHALLENGE_MIN = 43  # 32 random bytes in base64url without padding
CHALLENGE_MAX = 512
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]"}


def normalize_origin(value: str) -> str:
    """`scheme://host[:port]`, lower-cased, default port dropped; ValueError otherwise.

    https only, except plain http on loopback for development.
    """
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"not an origin: {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"an origin has no path, query or user: {value!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if parts.scheme == "http" and host not in _LOOPBACK_HOSTS:
        raise ValueError(f"http is only allowed for localhost: {value!r}")
    port = parts.port
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def is_valid_challenge(challenge: object) -> bool:
    return (
        isinstance(challenge, str)
        and CHALLENGE_MIN <= len(challenge) <= CHALLENGE_MAX
        and _B64URL.fullmatch(challenge) is not None
    )


# ----------------------------------------------------------------------------------------
# The app's name: what the page says it is signing in to (display only, never trusted)
# ----------------------------------------------------------------------------------------
APP_NAME_MAX = 64
# The bidi overrides and isolates (U+202A–U+202E, U+2066–U+2069) could make the name read
# backwards over the origin beside it; they are format characters (category Cf), so the
# category "C" test below drops them with every control character (no terminal escapes).


def clean_app_name(value: object) -> str:
    """The page's ``app`` member fit to show, or "" (ignored) when it is not a string or is
    empty or longer than APP_NAME_MAX once control and bidi characters are removed.

    A name too long is dropped, not cut: a cut name could hide the part that tells it apart.
    """
    if not isinstance(value, str):
        return ""
    # A line break or tab is a space; what is left of an escape ("[31m") is only text.
    kept = "".join(" " if c.isspace() else c for c in value
                   if c.isspace() or unicodedata.category(c)[0] != "C")
    name = " ".join(kept.split())
    return name if len(name) <= APP_NAME_MAX else ""


@dataclass(frozen=True)
class Site:
    """Whom a PIN is typed for: ``where`` is what the bridge checked itself (the caller's
    origin, or its host), ``app`` only what that page claims (cleaned, maybe "").

    The name always comes with ``where`` after it, so a page of another allowed origin that
    borrows an app's name still shows its own origin: that origin is what the card signs.
    """

    where: str
    app: str = ""

    @classmethod
    def of(cls, value: Site | str) -> Site:
        return value if isinstance(value, Site) else cls(value)

    @property
    def ja(self) -> str:
        return f"「{self.app}」（{self.where} から）" if self.app else self.where

    def ja_then(self, rest: str) -> str:
        """The Japanese name and the words after it: a space after a bare host (as in
        「127.0.0.1:5000 にサインイン」), none after the full-width bracket of a name."""
        return f"{self.ja}{rest}" if self.app else f"{self.ja} {rest}"

    @property
    def en(self) -> str:
        return f"{self.app} (from {self.where})" if self.app else self.where
