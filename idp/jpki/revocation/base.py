"""What every revocation source shares: the checker protocol, its two refusals, clock skew.

Everything under :mod:`idp.jpki.revocation` fails *closed*: if we cannot get a fresh,
authentic answer, the sign-in is refused with ``revocation_unavailable``.  A lost or stolen
card is revoked by a phone call to J-LIS; treating "don't know" as "good" would let the
finder sign in with a guessed PIN.
"""

from __future__ import annotations

from collections.abc import Callable
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


#: Told each answer of a revocation source: ``(source, outcome)``, the source one of
#: ``crl``, ``ocsp``, ``platform`` (a checker's ``source`` attribute), the outcome ``good``,
#: ``revoked``, ``unknown`` (no fresh authentic answer) or ``error`` (the checker failed).
#: The provider counts them (``idp.metrics``); this package only calls what it is given.
RevocationObserver = Callable[[str, str], None]


def checked(checker: RevocationChecker, validated: ValidatedCertificate, now: datetime,
            observe: RevocationObserver | None) -> None:
    """``checker.check``, telling ``observe`` what the source answered. A checker without a
    ``source`` (a combinator, :class:`NoRevocation`) is not observed here: a combinator
    observes each of its sources itself."""
    source = getattr(checker, "source", None)
    if observe is None or source is None:
        checker.check(validated, now)
        return
    try:
        checker.check(validated, now)
    except CardError as exc:
        observe(source, "revoked" if exc.code == "certificate_revoked" else "unknown")
        raise
    except Exception:
        observe(source, "error")
        raise
    observe(source, "good")


def unavailable_error(message: str) -> CardError:
    return CardError("revocation_unavailable", message)


def revoked_error(message: str = "certificate has been revoked") -> CardError:
    return CardError("certificate_revoked", message)


class NoRevocation:
    """Accept every certificate.  Development only: the caller must log a warning."""

    def check(self, validated: ValidatedCertificate, now: datetime) -> None:
        return None
