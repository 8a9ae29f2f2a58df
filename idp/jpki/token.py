"""Parsing of the token that the card bridge posts after the card has signed the challenge.

The token is untrusted input straight from the browser.  Parsing only checks *shape* (types,
sizes, encodings); whether the certificate and signature are any good is decided later by
:mod:`idp.jpki.path` and :mod:`idp.jpki.challenge`.  Any malformed input becomes
``CardError("invalid_request")`` and nothing else, so the web layer needs one ``except``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Final

from idp.jpki.errors import CardError

TOKEN_FORMAT: Final = "jpki-auth:1"  # noqa: S105 - a format name, not a secret
ALGORITHM: Final = "RS256"
#: A JPKI user-authentication certificate is about 1.2 KiB; 16 KiB leaves ample room while
#: keeping a hostile client from making us parse megabytes of ASN.1.
MAX_CERTIFICATE_BYTES: Final = 16 * 1024
#: RSA up to 8192 bits; the card uses 2048 (256 bytes).
MAX_SIGNATURE_BYTES: Final = 1024
MAX_BRIDGE_CHARS: Final = 100

_FIELDS: Final = frozenset({"format", "certificate", "algorithm", "signature", "bridge"})
_B64_STD = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_B64_URL = re.compile(r"[A-Za-z0-9\-_]*={0,2}")
_PRINTABLE = re.compile(r"[\x20-\x7e]+")


@dataclass(frozen=True, slots=True)
class CardToken:
    """A syntactically valid bridge token.  Nothing in it has been verified yet."""

    certificate_der: bytes
    signature: bytes
    algorithm: str
    bridge: str

    def __repr__(self) -> str:  # keep logs short: no kilobytes of DER
        return (
            f"CardToken(certificate_der=<{len(self.certificate_der)} bytes>, "
            f"signature=<{len(self.signature)} bytes>, algorithm={self.algorithm!r}, "
            f"bridge={self.bridge!r})"
        )


def _invalid(message: str) -> CardError:
    return CardError("invalid_request", message)


def _b64decode(value: object, field: str, max_bytes: int) -> bytes:
    """Decode standard base64 or base64url, padded or not; refuse anything else.

    Both alphabets are accepted because browsers' ``btoa`` and JOSE-style code differ, but
    mixing them, whitespace and garbage are refused (``validate=True``) so that one token
    has exactly one meaning.
    """
    if not isinstance(value, str):
        raise _invalid(f"{field} must be a base64 string")
    # Check the size before decoding: 4 characters encode 3 bytes.
    if len(value) > (max_bytes + 2) // 3 * 4:
        raise _invalid(f"{field} is too large")
    if not value:
        raise _invalid(f"{field} is empty")
    if _B64_STD.fullmatch(value):
        altchars = None
    elif _B64_URL.fullmatch(value):
        altchars = b"-_"
    else:
        raise _invalid(f"{field} is not base64")
    stripped = value.rstrip("=")
    if len(stripped) % 4 == 1:
        raise _invalid(f"{field} is not base64 (bad length)")
    padded = stripped + "=" * (-len(stripped) % 4)
    if len(value) != len(stripped) and value != padded:
        raise _invalid(f"{field} has wrong base64 padding")
    try:
        data = base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid(f"{field} is not base64") from exc
    if len(data) > max_bytes:
        raise _invalid(f"{field} is too large")
    if not data:
        raise _invalid(f"{field} is empty")
    return data


def parse_token(data: Any) -> CardToken:
    """Check the decoded JSON ``data`` and return a :class:`CardToken`.

    Expected shape::

        {"format": "jpki-auth:1", "certificate": "<base64 DER>", "algorithm": "RS256",
         "signature": "<base64>", "bridge": "<name>/<version>"}

    Unknown keys are refused: the ``format`` string is the place to evolve the protocol, and
    silently ignored fields are how two parties end up disagreeing about a token's meaning.
    """
    if not isinstance(data, dict):
        raise _invalid("token must be a JSON object")
    keys = set()
    for key in data:
        if not isinstance(key, str):
            raise _invalid("token keys must be strings")
        keys.add(key)
    missing = _FIELDS - keys
    if missing:
        raise _invalid("token lacks " + ", ".join(sorted(missing)))
    extra = keys - _FIELDS
    if extra:
        shown = ", ".join(repr(k[:20]) for k in sorted(extra)[:5])
        raise _invalid(f"token has unknown fields: {shown}")

    fmt = data["format"]
    if not isinstance(fmt, str) or fmt != TOKEN_FORMAT:
        raise _invalid(f"unsupported token format (expected {TOKEN_FORMAT!r})")
    algorithm = data["algorithm"]
    if not isinstance(algorithm, str) or algorithm != ALGORITHM:
        raise _invalid(f"unsupported algorithm (expected {ALGORITHM!r})")
    bridge = data["bridge"]
    if (
        not isinstance(bridge, str)
        or not 0 < len(bridge) <= MAX_BRIDGE_CHARS
        or not _PRINTABLE.fullmatch(bridge)
    ):
        raise _invalid(f"bridge must be 1-{MAX_BRIDGE_CHARS} printable ASCII characters")

    certificate = _b64decode(data["certificate"], "certificate", MAX_CERTIFICATE_BYTES)
    signature = _b64decode(data["signature"], "signature", MAX_SIGNATURE_BYTES)
    return CardToken(
        certificate_der=certificate, signature=signature, algorithm=algorithm, bridge=bridge
    )
