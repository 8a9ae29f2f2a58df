"""Revocation checking of card certificates: CRL, OCSP, both, or a platform operator's API.

The package's public entry point (re-exports only).  One module per source of revocation
data, each a :class:`RevocationChecker`; a new source (say another platform operator's API)
is one module here plus a mode in :mod:`idp.jpki.revocation.combined`:

- :mod:`~idp.jpki.revocation.base`: the protocol, the two refusals, the clock skew;
- :mod:`~idp.jpki.revocation.crl`: CRLs from files or URLs;
- :mod:`~idp.jpki.revocation.ocsp`: an OCSP responder (RFC 6960) and its cache;
- :mod:`~idp.jpki.revocation.platform`: a platform operator's status API;
- :mod:`~idp.jpki.revocation.combined`: OCSP-then-CRL and ``build_revocation_checker``.
"""

from idp.jpki.revocation.base import (
    CLOCK_SKEW,
    NoRevocation,
    RevocationChecker,
    RevocationObserver,
    checked,
)
from idp.jpki.revocation.combined import REVOCATION_MODES, OcspThenCrl, build_revocation_checker
from idp.jpki.revocation.crl import CrlRevocation, CrlSourceStatus, default_fetch
from idp.jpki.revocation.ocsp import OcspCache, OcspRevocation, PostFunction, default_post
from idp.jpki.revocation.platform import (
    CertificateStatus,
    PlatformRevocation,
    PlatformValidationApi,
)

__all__ = [
    "CLOCK_SKEW",
    "REVOCATION_MODES",
    "CertificateStatus",
    "CrlRevocation",
    "CrlSourceStatus",
    "NoRevocation",
    "OcspCache",
    "OcspRevocation",
    "OcspThenCrl",
    "PlatformRevocation",
    "PlatformValidationApi",
    "PostFunction",
    "RevocationChecker",
    "RevocationObserver",
    "build_revocation_checker",
    "checked",
    "default_fetch",
    "default_post",
]
