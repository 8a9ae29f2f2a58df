"""``jpki-auth:1``: the card bridge's token for the MyNumber card's user-authentication key.

Shape::

    {"format": "jpki-auth:1", "certificate": "<base64 DER>", "algorithm": "RS256",
     "signature": "<base64>", "bridge": "<name>/<version>"}

The signature is RSASSA-PKCS1-v1_5/SHA-256 over :func:`idp.jpki.challenge.signed_message`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cryptography import x509

from idp.jpki.challenge import verify_signature as verify_rsa_signature
from idp.jpki.formats.fields import (
    CardFormat,
    CardToken,
    b64decode,
    bridge_name,
    invalid,
    require_fields,
)

TOKEN_FORMAT: Final = "jpki-auth:1"  # noqa: S105 - a format name, not a secret
ALGORITHM: Final = "RS256"
#: A JPKI user-authentication certificate is about 1.2 KiB; 16 KiB leaves ample room while
#: keeping a hostile client from making us parse megabytes of ASN.1.
MAX_CERTIFICATE_BYTES: Final = 16 * 1024
#: RSA up to 8192 bits; the card uses 2048 (256 bytes).
MAX_SIGNATURE_BYTES: Final = 1024

_FIELDS: Final = frozenset({"format", "certificate", "algorithm", "signature", "bridge"})


def parse(data: Mapping[str, Any]) -> CardToken:
    """Check the shape of a ``jpki-auth:1`` token and return its :class:`CardToken`."""
    require_fields(data, _FIELDS)
    algorithm = data["algorithm"]
    if not isinstance(algorithm, str) or algorithm != ALGORITHM:
        raise invalid(f"unsupported algorithm (expected {ALGORITHM!r})")
    bridge = bridge_name(data["bridge"])
    certificate = b64decode(data["certificate"], "certificate", MAX_CERTIFICATE_BYTES)
    signature = b64decode(data["signature"], "signature", MAX_SIGNATURE_BYTES)
    return CardToken(
        format=TOKEN_FORMAT,
        certificate_der=certificate,
        signature=signature,
        algorithm=algorithm,
        bridge=bridge,
    )


def verify_signature(
    certificate: x509.Certificate, token: CardToken, origin: str, challenge: str
) -> None:
    verify_rsa_signature(certificate, token.signature, origin, challenge)


FORMAT: Final = CardFormat(TOKEN_FORMAT, parse, verify_signature)
