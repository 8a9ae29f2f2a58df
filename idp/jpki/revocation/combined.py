"""The combinator: OCSP then CRL, and building the checker an IDP_JPKI_REVOCATION mode names."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from idp.jpki.errors import CardError
from idp.jpki.path import ValidatedCertificate
from idp.jpki.revocation.base import (
    NoRevocation,
    RevocationChecker,
    RevocationObserver,
    checked,
    unavailable_error,
)
from idp.jpki.revocation.crl import CrlRevocation
from idp.jpki.revocation.ocsp import OcspRevocation, PostFunction
from idp.jpki.trust import TrustAnchors

log = logging.getLogger(__name__)


class OcspThenCrl:
    """OCSP first; if OCSP cannot answer, the CRL decides (as the national My Key Platform).

    A REVOKED answer from OCSP is final; the CRL is never asked to overrule it.
    """

    def __init__(self, ocsp_checker: RevocationChecker, crl_checker: RevocationChecker):
        self.ocsp = ocsp_checker
        self.crl = crl_checker
        #: Told each source's answer (set by whoever builds the verifier; None: nobody).
        self.observe: RevocationObserver | None = None

    def check(self, validated: ValidatedCertificate, now: datetime) -> None:
        try:
            checked(self.ocsp, validated, now, self.observe)
            return
        except CardError as exc:
            if exc.code != "revocation_unavailable":
                raise
            ocsp_error = exc
        log.info("OCSP unavailable (%s); falling back to CRL", ocsp_error.message)
        try:
            checked(self.crl, validated, now, self.observe)
        except CardError as exc:
            if exc.code == "revocation_unavailable":
                raise unavailable_error(f"OCSP: {ocsp_error.message}; CRL: {exc.message}") from exc
            raise


REVOCATION_MODES = ("crl", "ocsp", "ocsp,crl", "none")


def build_revocation_checker(
    mode: str,
    crl_sources: Iterable[str],
    ocsp_url: str | None,
    anchors: TrustAnchors,
    *,
    allow_none: bool,
    fetch: Callable[[str], bytes] | None = None,
    post: PostFunction | None = None,
    ocsp_timeout: float = 5.0,
) -> RevocationChecker:
    """Build the checker named by ``mode`` (the IDP_JPKI_REVOCATION setting).

    Raises ``ValueError`` with an operator-readable message for an unknown mode, missing
    settings, or ``"none"`` when not explicitly allowed (development only).
    """
    normalized = ",".join(part.strip() for part in mode.lower().split(","))
    sources = [s.strip() for s in crl_sources if s.strip()]
    if normalized not in REVOCATION_MODES:
        raise ValueError(
            f"IDP_JPKI_REVOCATION={mode!r} is not one of: " + ", ".join(REVOCATION_MODES)
        )
    if normalized == "none":
        if not allow_none:
            raise ValueError(
                "IDP_JPKI_REVOCATION=none disables revocation checking and is only allowed "
                "in development; configure crl, ocsp or ocsp,crl"
            )
        return NoRevocation()
    crl_checker: CrlRevocation | None = None
    ocsp_checker: OcspRevocation | None = None
    if "crl" in normalized.split(","):
        if not sources:
            raise ValueError(f"IDP_JPKI_REVOCATION={normalized} needs IDP_JPKI_CRL_SOURCES")
        crl_checker = CrlRevocation(sources, fetch, anchors=anchors)
    if "ocsp" in normalized.split(","):
        if not ocsp_url:
            raise ValueError(f"IDP_JPKI_REVOCATION={normalized} needs IDP_JPKI_OCSP_URL")
        ocsp_checker = OcspRevocation(ocsp_url, post, ocsp_timeout)
    if ocsp_checker is not None and crl_checker is not None:
        return OcspThenCrl(ocsp_checker, crl_checker)
    checker = ocsp_checker or crl_checker
    assert checker is not None
    return checker
