"""Origin and challenge checks shared by the loopback server and the pairing flow."""

from __future__ import annotations

import re
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
