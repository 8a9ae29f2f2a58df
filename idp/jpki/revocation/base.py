"""What every revocation source shares: the checker protocol, its two refusals, clock skew.

Everything under :mod:`idp.jpki.revocation` fails *closed*: if we cannot get a fresh,
authentic answer, the sign-in is refused with ``revocation_unavailable``.  A lost or stolen
card is revoked by a phone call to J-LIS; treating "don't know" as "good" would let the
finder sign in with a guessed PIN.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from idp.jpki.errors import CardError
from idp.jpki.path import ValidatedCertificate

#: Clock skew tolerated between us and the CRL issuer / OCSP responder.
CLOCK_SKEW = timedelta(minutes=5)


@runtime_checkable
class RevocationChecker(Protocol):
    """Decides whether a validated card certificate is still good.

    ``check`` returns ``None`` when the certificate is known good and raises
    ``CardError("certificate_revoked")`` or ``CardError("revocation_unavailable")``.
    """

    def check(self, validated: ValidatedCertificate, now: datetime) -> None: ...


def unavailable_error(message: str) -> CardError:
    return CardError("revocation_unavailable", message)


def revoked_error(message: str = "certificate has been revoked") -> CardError:
    return CardError("certificate_revoked", message)


class NoRevocation:
    """Accept every certificate.  Development only: the caller must log a warning."""

    def check(self, validated: ValidatedCertificate, now: datetime) -> None:
        return None
