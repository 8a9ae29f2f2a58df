"""What every card token format shares: the parsed token, the format record, field checks.

The token is untrusted input straight from the browser.  Parsing only checks *shape* (types,
sizes, encodings); whether the certificate and signature are any good is decided later by
:mod:`idp.jpki.path` and the format's signature check.  Any malformed input becomes
``CardError("invalid_request")`` and nothing else, so the web layer needs one ``except``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509

from idp.jpki.errors import CardError

MAX_BRIDGE_CHARS: Final = 100

_B64_STD = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_B64_URL = re.compile(r"[A-Za-z0-9\-_]*={0,2}")
_PRINTABLE = re.compile(r"[\x20-\x7e]+")


@dataclass(frozen=True, slots=True)
class CardToken:
    """A syntactically valid bridge token.  Nothing in it has been verified yet.

    ``format`` names the :class:`CardFormat` that parsed it, so the verifier checks the
    signature the way that format defines (and refuses a format it does not know).
    """

    format: str
    certificate_der: bytes
    signature: bytes
    algorithm: str
    bridge: str

    def __repr__(self) -> str:  # keep logs short: no kilobytes of DER
        return (
            f"CardToken(format={self.format!r}, "
            f"certificate_der=<{len(self.certificate_der)} bytes>, "
            f"signature=<{len(self.signature)} bytes>, algorithm={self.algorithm!r}, "
            f"bridge={self.bridge!r})"
        )


#: ``verify_signature(certificate, token, origin, challenge)`` raises
#: ``CardError("signature_invalid")`` unless the token's signature is good.
SignatureCheck = Callable[[x509.Certificate, CardToken, str, str], None]


@dataclass(frozen=True, slots=True)
class CardFormat:
    """One token format: its name, its parser and its signature check."""

    name: str
    #: ``parse(data)`` gets the JSON object (already known to carry ``format == name``).
    parse: Callable[[Mapping[str, Any]], CardToken]
    verify_signature: SignatureCheck


def invalid(message: str) -> CardError:
    return CardError("invalid_request", message)


def require_fields(data: Mapping[Any, Any], fields: frozenset[str]) -> None:
    """Refuse missing and unknown keys.

    Unknown keys are refused: the ``format`` string is the place to evolve the protocol, and
    silently ignored fields are how two parties end up disagreeing about a token's meaning.
    """
    keys = set()
    for key in data:
        if not isinstance(key, str):
            raise invalid("token keys must be strings")
        keys.add(key)
    missing = fields - keys
    if missing:
        raise invalid("token lacks " + ", ".join(sorted(missing)))
    extra = keys - fields
    if extra:
        shown = ", ".join(repr(k[:20]) for k in sorted(extra)[:5])
        raise invalid(f"token has unknown fields: {shown}")


def bridge_name(value: object) -> str:
    """The bridge's ``<name>/<version>``: 1-100 printable ASCII characters."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_BRIDGE_CHARS
        or not _PRINTABLE.fullmatch(value)
    ):
        raise invalid(f"bridge must be 1-{MAX_BRIDGE_CHARS} printable ASCII characters")
    return value


def b64decode(value: object, field: str, max_bytes: int) -> bytes:
    """Decode standard base64 or base64url, padded or not; refuse anything else.

    Both alphabets are accepted because browsers' ``btoa`` and JOSE-style code differ, but
    mixing them, whitespace and garbage are refused (``validate=True``) so that one token
    has exactly one meaning.
    """
    if not isinstance(value, str):
        raise invalid(f"{field} must be a base64 string")
    # Check the size before decoding: 4 characters encode 3 bytes.
    if len(value) > (max_bytes + 2) // 3 * 4:
        raise invalid(f"{field} is too large")
    if not value:
        raise invalid(f"{field} is empty")
    if _B64_STD.fullmatch(value):
        altchars = None
    elif _B64_URL.fullmatch(value):
        altchars = b"-_"
    else:
        raise invalid(f"{field} is not base64")
    stripped = value.rstrip("=")
    if len(stripped) % 4 == 1:
        raise invalid(f"{field} is not base64 (bad length)")
    padded = stripped + "=" * (-len(stripped) % 4)
    if len(value) != len(stripped) and value != padded:
        raise invalid(f"{field} has wrong base64 padding")
    try:
        data = base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid(f"{field} is not base64") from exc
    if len(data) > max_bytes:
        raise invalid(f"{field} is too large")
    if not data:
        raise invalid(f"{field} is empty")
    return data
