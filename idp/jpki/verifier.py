"""The one entry point the web layer needs: verify a parsed card token for a challenge.

Challenge bookkeeping (existence, expiry, one-time use, binding to the browser session) is
the caller's job with its short-lived store; this module only decides whether the token is
a valid signature over ``(origin, challenge)`` by a trusted, unrevoked card certificate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from idp.jpki.errors import CardError
from idp.jpki.formats.fields import CardFormat, CardToken
from idp.jpki.path import ValidatedCertificate, require_aware, validate_path
from idp.jpki.revocation.base import RevocationChecker, RevocationObserver, checked
from idp.jpki.token import FORMATS, format_of
from idp.jpki.trust import TrustAnchors

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VerifiedCard:
    """What the IdP may keep about a verified card: identifiers only, no personal data.

    ``(issuer, serial)`` identifies the certificate (it changes when the card or its
    certificate is renewed); ``certificate_sha256`` is a convenient single key for it.
    """

    issuer: str
    serial: str
    certificate_sha256: str
    not_after: datetime
    subject_cn: str


class CardVerifier:
    """Path validation -> challenge signature -> revocation, in that order.

    Revocation is last so that a forged or replayed token is refused before it can cost an
    OCSP round trip (and so that a flood of junk tokens cannot be turned against the
    responder).
    """

    def __init__(
        self,
        anchors: TrustAnchors,
        revocation: RevocationChecker,
        formats: Mapping[str, CardFormat] = FORMATS,
        observe: RevocationObserver | None = None,
    ) -> None:
        self.anchors = anchors
        self.revocation = revocation
        # Told each revocation source's answer (the provider counts them); a combinator
        # holds its own, for each of its sources.
        self.observe = observe
        # The formats this verifier accepts: a token parsed under a wider registry (a test's,
        # a future one) is refused here rather than checked by the wrong rules.
        self.formats = formats

    def validate(
        self, token: CardToken, origin: str, challenge: str, now: datetime
    ) -> ValidatedCertificate:
        """Path and signature checks only; returns the :class:`ValidatedCertificate`."""
        require_aware(now)
        card_format = format_of(token.format, self.formats)
        validated = validate_path(token.certificate_der, self.anchors, now)
        card_format.verify_signature(validated.certificate, token, origin, challenge)
        return validated

    def verify(self, token: CardToken, origin: str, challenge: str, now: datetime) -> VerifiedCard:
        """Return the :class:`VerifiedCard`, or raise :class:`CardError` saying why not."""
        validated = self.validate(token, origin, challenge, now)
        try:
            checked(self.revocation, validated, now, self.observe)
        except CardError:
            raise
        except Exception as exc:  # a bug or outage in a checker must fail closed
            log.exception("revocation checker failed")
            raise CardError(
                "revocation_unavailable", f"revocation check failed ({type(exc).__name__})"
            ) from exc
        return VerifiedCard(
            issuer=validated.issuer,
            serial=validated.serial,
            certificate_sha256=validated.sha256,
            not_after=validated.not_after,
            subject_cn=validated.subject_cn,
        )
