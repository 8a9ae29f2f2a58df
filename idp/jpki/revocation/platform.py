"""A JPKI platform operator's certificate-status API used as a revocation checker."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from cryptography.hazmat.primitives import serialization

from idp.jpki.path import ValidatedCertificate
from idp.jpki.revocation.base import revoked_error, unavailable_error

CertificateStatus = Literal["good", "revoked", "unknown"]


@runtime_checkable
class PlatformValidationApi(Protocol):
    """A JPKI platform operator's certificate-status API (see docs/jpki-verification.md).

    Registered platform operators relay J-LIS revocation data to their customers.  An
    integration implements this one method; it must return ``"good"`` only for a definite,
    current answer from the platform, and ``"unknown"`` (or raise) otherwise.

    ``issuer_dn`` is the RFC 4514 issuer DN, ``serial`` lower-case hex without leading
    zeros, ``certificate_der`` the whole card certificate (some APIs want it verbatim).
    """

    def status(self, issuer_dn: str, serial: str, certificate_der: bytes) -> CertificateStatus: ...


class PlatformRevocation:
    """Adapter: a :class:`PlatformValidationApi` used as a :class:`RevocationChecker`."""

    #: The label of this source's answers (``revocation.base.checked``).
    source = "platform"

    def __init__(self, api: PlatformValidationApi) -> None:
        self.api = api

    def check(self, validated: ValidatedCertificate, now: datetime) -> None:
        der = validated.certificate.public_bytes(serialization.Encoding.DER)
        try:
            status = self.api.status(validated.issuer, validated.serial, der)
        except Exception as exc:  # the platform's failures must not become "good"
            raise unavailable_error(f"platform validation failed ({type(exc).__name__})") from exc
        if status == "good":
            return
        if status == "revoked":
            raise revoked_error("certificate is revoked (platform operator)")
        raise unavailable_error("platform operator does not know the certificate status")
