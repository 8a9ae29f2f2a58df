"""The sign-in token the bridge hands to the provider (pure: no card, no I/O).

The card signs SHA256(SHA256(origin) || SHA256(challenge)) as PKCS#1 v1.5: binding the
origin means a token made for one site cannot be replayed at another, and hashing each
part first makes the 64-byte message unambiguous whatever the strings contain.
"""

from __future__ import annotations

import base64
import hashlib

TOKEN_FORMAT = "jpki-auth:1"  # noqa: S105 - a format name, not a secret
ALGORITHM = "RS256"


def signed_message(origin: str, challenge: str) -> bytes:
    """The 64 bytes the provider verifies the signature over."""
    return (
        hashlib.sha256(origin.encode("utf-8")).digest()
        + hashlib.sha256(challenge.encode("utf-8")).digest()
    )


def message_digest(origin: str, challenge: str) -> bytes:
    """SHA-256 of `signed_message`: what goes into the card's DigestInfo."""
    return hashlib.sha256(signed_message(origin, challenge)).digest()


def build_token(cert_der: bytes, signature: bytes, bridge_version: str) -> dict[str, str]:
    return {
        "format": TOKEN_FORMAT,
        "certificate": base64.b64encode(cert_der).decode("ascii"),
        "algorithm": ALGORITHM,
        "signature": base64.b64encode(signature).decode("ascii"),
        "bridge": f"mynagate-card-bridge/{bridge_version}",
    }
