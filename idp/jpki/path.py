"""Certificate path validation for the single-step JPKI path: card certificate -> J-LIS root.

Order of checks (cheapest and most telling first, and nothing that contacts the network):
parse -> issuer by signature -> anchor validity -> certificate validity -> profile.
Revocation is separate (:mod:`idp.jpki.revocation`, a package) so that the caller can run it *after*
the challenge signature has been checked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from idp.jpki.errors import CardError
from idp.jpki.profile import check_user_auth_profile
from idp.jpki.trust import TrustAnchors


@dataclass(frozen=True, slots=True)
class ValidatedCertificate:
    """A card certificate that chains to a trust anchor and fits the user-auth profile.

    ``serial`` is lower-case hex without leading zeros (``format(n, "x")``); ``sha256`` and
    ``issuer_sha256`` are lower-case hex SHA-256 of the DER certificates.
    """

    certificate: x509.Certificate
    issuer_certificate: x509.Certificate
    issuer: str
    serial: str
    sha256: str
    not_before: datetime
    not_after: datetime
    subject_cn: str
    issuer_sha256: str

    @property
    def serial_number(self) -> int:
        return self.certificate.serial_number


def require_aware(now: datetime) -> datetime:
    """Refuse naive datetimes: comparing them with certificate times (UTC) is a silent bug."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime (use datetime.now(UTC))")
    return now


def load_certificate(cert_der: bytes) -> x509.Certificate:
    """Parse a DER certificate; anything unparsable is the client's fault: invalid_request."""
    try:
        return x509.load_der_x509_certificate(bytes(cert_der))
    # Hostile input: cryptography raises ValueError, InvalidVersion (not a ValueError), ...
    # The precise class does not matter; that nothing but CardError escapes does.
    except Exception as exc:
        raise CardError("invalid_request", "certificate is not valid DER X.509") from exc


def validate_path(cert_der: bytes, anchors: TrustAnchors, now: datetime) -> ValidatedCertificate:
    """Validate ``cert_der`` against ``anchors`` at ``now``; raise :class:`CardError` if not.

    Only ``CardError`` escapes for any input bytes; ``ValueError`` only for a naive ``now``.
    """
    require_aware(now)
    cert = load_certificate(cert_der)
    try:
        return _validate(cert, bytes(cert_der), anchors, now)
    except CardError:
        raise
    except Exception as exc:
        # The DER parsed but some field is malformed in a way cryptography parses lazily
        # (extensions, names, keys); the exception classes for that are many and unstable.
        raise CardError(
            "certificate_untrusted", f"malformed certificate ({type(exc).__name__})"
        ) from exc


def _validate(
    cert: x509.Certificate, der: bytes, anchors: TrustAnchors, now: datetime
) -> ValidatedCertificate:
    issuer = anchors.issuer_of(cert, now)
    if issuer is None:
        raise CardError(
            "certificate_untrusted", "certificate is not signed by any configured trust anchor"
        )
    if not issuer.not_valid_before_utc <= now <= issuer.not_valid_after_utc:
        # Under JPKI's rules a card certificate expires before its CA; an issuing CA outside
        # its validity means a broken anchor set or clock, not an ordinary expired card.
        raise CardError("certificate_untrusted", "issuing CA certificate is not valid now")
    if now < cert.not_valid_before_utc:
        raise CardError("certificate_not_yet_valid", "certificate is not yet valid")
    if now > cert.not_valid_after_utc:
        raise CardError("certificate_expired", "certificate has expired")
    check_user_auth_profile(cert)

    cn_attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = cn_attrs[0].value
    if isinstance(cn, bytes):  # only for odd string types; keep it printable
        cn = cn.hex()
    if cert.serial_number <= 0:
        raise CardError("certificate_untrusted", "certificate serial number is not positive")
    return ValidatedCertificate(
        certificate=cert,
        issuer_certificate=issuer,
        issuer=anchors.subject_dn(issuer),
        serial=format(cert.serial_number, "x"),
        sha256=hashlib.sha256(der).hexdigest(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        subject_cn=cn,
        issuer_sha256=anchors.fingerprint(issuer),
    )
