"""Trust anchors: the J-LIS user-authentication CA certificates we accept.

J-LIS renews its CA every few years and every generation has the *same* subject DN, while
cards issued under older generations stay valid for years.  Matching an issuer by name would
therefore pick an arbitrary generation; :meth:`TrustAnchors.issuer_of` instead returns the
anchor whose public key verifies the certificate's signature.

JPKI user-authentication certificates are issued directly by the root, so only paths of the
form *leaf -> anchor* exist here.  Anything that is not a self-signed CA certificate is
refused when loading anchors: an intermediate placed in the anchor file would otherwise be
trusted as if it were a root, i.e. mis-validated rather than refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding


class TrustAnchorError(ValueError):
    """An anchor file is unusable.  Raised at start-up, so the operator sees it at once."""


def certificate_sha256(cert: x509.Certificate) -> str:
    """Lower-case hex SHA-256 of the DER certificate (the usual "fingerprint")."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def is_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name and key match ``cert``'s issuer name and signature."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _check_anchor(cert: x509.Certificate, origin: str) -> None:
    name = cert.subject.rfc4514_string()
    if cert.subject != cert.issuer or not is_signed_by(cert, cert):
        raise TrustAnchorError(
            f"{origin}: {name!r} is not a self-signed root certificate. Intermediate CA "
            "certificates are not supported: JPKI user-authentication certificates are "
            "issued directly by the J-LIS root."
        )
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise TrustAnchorError(f"{origin}: {name!r} is not a CA certificate (basicConstraints)")


class TrustAnchors:
    """An immutable set of root certificates, looked up by signature."""

    def __init__(self, certificates: Iterable[x509.Certificate], *, origin: str = "anchors"):
        certs: list[x509.Certificate] = []
        seen: set[bytes] = set()
        for cert in certificates:
            _check_anchor(cert, origin)
            der = cert.public_bytes(Encoding.DER)
            if der not in seen:  # the same file listed twice is harmless
                seen.add(der)
                certs.append(cert)
        if not certs:
            raise TrustAnchorError(f"{origin}: no trust anchor certificates")
        self._certs: tuple[x509.Certificate, ...] = tuple(certs)
        self._fingerprints = {id(c): certificate_sha256(c) for c in certs}
        self._dns = {id(c): c.subject.rfc4514_string() for c in certs}

    @classmethod
    def from_pem_bytes(cls, data: bytes, *, origin: str = "PEM data") -> TrustAnchors:
        """Load every certificate of a PEM bundle (several ``BEGIN CERTIFICATE`` blocks)."""
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise TrustAnchorError(f"{origin}: not a PEM certificate file ({exc})") from exc
        return cls(certs, origin=origin)

    @classmethod
    def from_pem_files(cls, paths: Iterable[str | Path]) -> TrustAnchors:
        """Load anchors from PEM files; each file may hold several certificates."""
        certs: list[x509.Certificate] = []
        names: list[str] = []
        for path in paths:
            p = Path(path)
            try:
                data = p.read_bytes()
            except OSError as exc:
                raise TrustAnchorError(f"cannot read trust anchor file {p}: {exc}") from exc
            certs.extend(cls.from_pem_bytes(data, origin=str(p)).certificates)
            names.append(str(p))
        return cls(certs, origin=", ".join(names) or "anchors")

    @property
    def certificates(self) -> Sequence[x509.Certificate]:
        return self._certs

    def __len__(self) -> int:
        return len(self._certs)

    def __iter__(self):
        return iter(self._certs)

    def fingerprint(self, anchor: x509.Certificate) -> str:
        """SHA-256 hex of an anchor; used as the stable key for per-issuer revocation data."""
        fp = self._fingerprints.get(id(anchor))
        return fp if fp is not None else certificate_sha256(anchor)

    def subject_dn(self, anchor: x509.Certificate) -> str:
        """RFC 4514 subject of an anchor (cached: it is computed on every sign-in)."""
        dn = self._dns.get(id(anchor))
        return dn if dn is not None else anchor.subject.rfc4514_string()

    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """All anchors whose key verifies ``cert``'s signature (normally zero or one)."""
        # verify_directly_issued_by compares the names itself (in Rust, cheaply) before the
        # signature, so no Python-level Name comparison is needed here.
        return [a for a in self._certs if is_signed_by(cert, a)]

    def issuer_of(
        self, cert: x509.Certificate, now: datetime | None = None
    ) -> x509.Certificate | None:
        """The anchor that signed ``cert``, chosen by signature, never by name alone.

        If a CA was re-certified with the same key (two anchors verify), prefer one that is
        valid at ``now``.
        """
        found = self.issuers_of(cert)
        if now is not None:
            valid = [a for a in found if a.not_valid_before_utc <= now <= a.not_valid_after_utc]
            if valid:
                return valid[0]
        return found[0] if found else None

    def for_signed_object(self, verify) -> x509.Certificate | None:
        """Return the first anchor for which ``verify(anchor)`` is true (CRLs, OCSP)."""
        for anchor in self._certs:
            try:
                if verify(anchor):
                    return anchor
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
        return None
