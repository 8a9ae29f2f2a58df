"""JPKI (MyNumber card user-authentication certificate) verification core.

Pure Python on top of ``cryptography``; deliberately free of Flask so that it can be used
from the web app, CLI commands, background jobs and tests alike.  Typical use::

    anchors = TrustAnchors.from_pem_files(settings.IDP_JPKI_TRUST_ANCHORS)
    revocation = build_revocation_checker(mode, crl_sources, ocsp_url, anchors,
                                          allow_none=settings.DEBUG)
    verifier = CardVerifier(anchors, revocation)
    card = verifier.verify(parse_token(json_body), origin, challenge, datetime.now(UTC))

A card token is dispatched on its ``format`` (:data:`FORMATS`, one module per format in
:mod:`idp.jpki.formats`); revocation sources are the package :mod:`idp.jpki.revocation`;
test scaffolding (a test PKI, an OCSP responder) is :mod:`idp.jpki.testing`, never imported
by the sign-in path.
"""

from idp.jpki.challenge import new_challenge, signed_message, verify_signature
from idp.jpki.errors import CODES, CardError
from idp.jpki.formats.fields import CardFormat, CardToken
from idp.jpki.path import ValidatedCertificate, validate_path
from idp.jpki.profile import check_user_auth_profile
from idp.jpki.revocation import (
    REVOCATION_MODES,
    CrlRevocation,
    CrlSourceStatus,
    NoRevocation,
    OcspCache,
    OcspRevocation,
    OcspThenCrl,
    PlatformRevocation,
    PlatformValidationApi,
    RevocationChecker,
    build_revocation_checker,
)
from idp.jpki.token import FORMATS, parse_token
from idp.jpki.trust import TrustAnchorError, TrustAnchors, certificate_sha256
from idp.jpki.verifier import CardVerifier, VerifiedCard

__all__ = [
    "CODES",
    "FORMATS",
    "REVOCATION_MODES",
    "CardError",
    "CardFormat",
    "CardToken",
    "CardVerifier",
    "CrlRevocation",
    "CrlSourceStatus",
    "NoRevocation",
    "OcspCache",
    "OcspRevocation",
    "OcspThenCrl",
    "PlatformRevocation",
    "PlatformValidationApi",
    "RevocationChecker",
    "TrustAnchorError",
    "TrustAnchors",
    "ValidatedCertificate",
    "VerifiedCard",
    "build_revocation_checker",
    "certificate_sha256",
    "check_user_auth_profile",
    "new_challenge",
    "parse_token",
    "signed_message",
    "validate_path",
    "verify_signature",
]
