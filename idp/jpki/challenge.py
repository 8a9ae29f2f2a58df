"""What the card signs, and checking that it did.

The card signs ``SHA-256(origin) || SHA-256(challenge)`` (64 bytes).  Hashing the origin in
binds the signature to the relying site, so a signature phished by another site for the same
challenge is useless here; hashing both parts keeps the message fixed-length and free of
delimiter ambiguity.  The bridge sends the card the DER DigestInfo of SHA-256 over those 64
bytes, which makes the result an ordinary RSASSA-PKCS1-v1_5/SHA-256 signature of the message.
"""

from __future__ import annotations

import hashlib
import secrets

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from idp.jpki.errors import CardError

CHALLENGE_BYTES = 32


def new_challenge() -> str:
    """Return a fresh challenge: base64url without padding of 32 random bytes (43 chars)."""
    return secrets.token_urlsafe(CHALLENGE_BYTES)


def signed_message(origin: str, challenge: str) -> bytes:
    """Return the 64-byte message the card signs: SHA-256(origin) || SHA-256(challenge).

    ``origin`` is the IdP's web origin exactly as the browser reports it
    (``https://host[:port]``, no trailing slash); both sides must use the same string.
    """
    return (
        hashlib.sha256(origin.encode("utf-8")).digest()
        + hashlib.sha256(challenge.encode("utf-8")).digest()
    )


def verify_signature(
    certificate: x509.Certificate, signature: bytes, origin: str, challenge: str
) -> None:
    """Check the card's RSASSA-PKCS1-v1_5/SHA-256 signature over :func:`signed_message`.

    Raises ``CardError("signature_invalid")`` for a wrong signature, a wrong origin or
    challenge (they change the message), or a key that is not RSA.
    """
    try:
        public_key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CardError("signature_invalid", "certificate public key unusable") from exc
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CardError("signature_invalid", "certificate key is not RSA")
    if len(signature) != (public_key.key_size + 7) // 8:
        # PKCS#1 v1.5 signatures are exactly the modulus length; anything else is forged or
        # truncated, and refusing early avoids a pointless modular exponentiation.
        raise CardError("signature_invalid", "signature length does not match the key")
    try:
        public_key.verify(
            signature, signed_message(origin, challenge), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError) as exc:
        raise CardError("signature_invalid", "card signature does not verify") from exc
