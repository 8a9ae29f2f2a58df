"""Revocation checking of card certificates: CRL, OCSP, both, or a platform operator's API.

Everything here fails *closed*: if we cannot get a fresh, authentic answer, the sign-in is
refused with ``revocation_unavailable``.  A lost or stolen card is revoked by a phone call to
J-LIS; treating "don't know" as "good" would let the finder sign in with a guessed PIN.

J-LIS gives revocation data only to registered verifiers (directly or through a platform
operator), and the CA certificates point to a directory name rather than a URL, so CRL
sources and the OCSP URL are configuration, never read from the certificate.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from idp.jpki.errors import CardError
from idp.jpki.path import ValidatedCertificate, require_aware
from idp.jpki.trust import TrustAnchors, is_signed_by

log = logging.getLogger(__name__)

#: Clock skew tolerated between us and the CRL issuer / OCSP responder.
CLOCK_SKEW = timedelta(minutes=5)
#: CRLs of a national CA can be large; refuse anything beyond this to bound memory.
MAX_CRL_BYTES = 512 * 1024 * 1024
MAX_OCSP_RESPONSE_BYTES = 1024 * 1024


@runtime_checkable
class RevocationChecker(Protocol):
    """Decides whether a validated card certificate is still good.

    ``check`` returns ``None`` when the certificate is known good and raises
    ``CardError("certificate_revoked")`` or ``CardError("revocation_unavailable")``.
    """

    def check(self, validated: ValidatedCertificate, now: datetime) -> None: ...


def _unavailable(message: str) -> CardError:
    return CardError("revocation_unavailable", message)


def _revoked(message: str = "certificate has been revoked") -> CardError:
    return CardError("certificate_revoked", message)


# --------------------------------------------------------------------------------------------
# No revocation (development only)
# --------------------------------------------------------------------------------------------


class NoRevocation:
    """Accept every certificate.  Development only: the caller must log a warning."""

    def check(self, validated: ValidatedCertificate, now: datetime) -> None:
        return None


# --------------------------------------------------------------------------------------------
# CRL
# --------------------------------------------------------------------------------------------


def default_fetch(source: str, *, timeout: float = 30.0) -> bytes:
    """Read a CRL from a file path or an http(s) URL, bounded to :data:`MAX_CRL_BYTES`."""
    if source.startswith(("http://", "https://")):
        import requests  # imported lazily: file-only deployments and tests do not need it

        with requests.get(source, timeout=timeout, stream=True) as response:
            response.raise_for_status()
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(chunk_size=1 << 16):
                size += len(chunk)
                if size > MAX_CRL_BYTES:
                    raise ValueError(f"CRL larger than {MAX_CRL_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    path = Path(source)
    if path.stat().st_size > MAX_CRL_BYTES:
        raise ValueError(f"CRL larger than {MAX_CRL_BYTES} bytes")
    return path.read_bytes()


@dataclass(frozen=True, slots=True)
class CrlSourceStatus:
    """Outcome of loading one CRL source, for the refresh CLI and logs."""

    source: str
    ok: bool
    message: str
    issuer_sha256: str | None = None
    this_update: datetime | None = None
    next_update: datetime | None = None
    revoked_count: int = 0


@dataclass(frozen=True, slots=True)
class _CrlEntry:
    source: str
    issuer_sha256: str
    #: ``None`` for a full CRL, else the distribution-point names it is scoped to.
    scopes: tuple[Hashable, ...] | None
    this_update: datetime
    next_update: datetime
    revoked: frozenset[int]


class _Unusable(Exception):
    pass


def _crl_scopes(crl: x509.CertificateRevocationList) -> tuple[Hashable, ...] | None:
    """Distribution-point scope of a CRL, refusing kinds of CRL we cannot use safely."""
    exts = crl.extensions
    try:
        exts.get_extension_for_class(x509.DeltaCRLIndicator)
    except x509.ExtensionNotFound:
        pass
    else:
        raise _Unusable("delta CRLs are not supported")
    try:
        idp = exts.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return None
    if idp.only_contains_ca_certs or idp.only_contains_attribute_certs:
        raise _Unusable("CRL does not cover end-entity certificates")
    if idp.only_some_reasons is not None:
        raise _Unusable("CRL covers only some revocation reasons")
    if idp.indirect_crl:
        raise _Unusable("indirect CRLs are not supported")
    scopes: list[Hashable] = []
    if idp.full_name:
        scopes.extend(("full", name) for name in idp.full_name)
    if idp.relative_name is not None:
        scopes.append(("relative", idp.relative_name))
    return tuple(scopes) or None


def _certificate_scopes(cert: x509.Certificate) -> list[Hashable]:
    try:
        dps = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    scopes: list[Hashable] = []
    for dp in dps:
        if dp.full_name:
            scopes.extend(("full", name) for name in dp.full_name)
        if dp.relative_name is not None:
            scopes.append(("relative", dp.relative_name))
    return scopes


class CrlRevocation:
    """Revocation by CRLs loaded from files or URLs, refreshed by :meth:`refresh`.

    Each CRL must be signed by a trust anchor (found by signature, as generations share a
    DN) and have a ``next_update`` in the future; otherwise it is unusable.  A certificate
    whose issuer has no fresh CRL gets ``revocation_unavailable``.  Lookups are a set
    membership test per issuer; :meth:`refresh` builds a new index and swaps it in, so
    concurrent :meth:`check` calls always see one consistent snapshot.

    If a source fails to load during a refresh, the previously loaded CRL from that source
    is kept as long as it is still fresh (a transient download error is not an outage), and
    a downloaded CRL older than the one already held is ignored (no roll-back).
    """

    def __init__(
        self,
        sources: Sequence[str],
        fetch: Callable[[str], bytes] | None = None,
        *,
        anchors: TrustAnchors,
        load: bool = True,
    ) -> None:
        for source in sources:
            if "://" in source and not source.startswith(("http://", "https://")):
                raise ValueError(f"unsupported CRL source {source!r}: use a path or http(s) URL")
        self._sources = list(sources)
        self._fetch = fetch or default_fetch
        self._anchors = anchors
        self._refresh_lock = threading.Lock()
        self._by_source: dict[str, _CrlEntry] = {}
        # issuer sha256 -> scope (None for full CRLs) -> freshest entry.  Replaced, never
        # mutated, so readers need no lock.
        self._index: dict[str, dict[Hashable | None, _CrlEntry]] = {}
        if load:
            self.refresh()

    @property
    def sources(self) -> list[str]:
        return list(self._sources)

    def refresh(self, now: datetime | None = None) -> list[CrlSourceStatus]:
        """Reload every source and swap the lookup index; return one status per source."""
        now = require_aware(now) if now is not None else datetime.now(UTC)
        with self._refresh_lock:
            previous = self._by_source
            loaded: dict[str, _CrlEntry] = {}
            statuses: list[CrlSourceStatus] = []
            for source in self._sources:
                old = previous.get(source)
                try:
                    entry = self._load(source, now)
                except _Unusable as exc:
                    message = str(exc)
                    if old is not None and old.next_update > now:
                        loaded[source] = old
                        message += "; keeping the previously loaded CRL"
                    log.warning("CRL source %s unusable: %s", source, message)
                    statuses.append(CrlSourceStatus(source, False, message))
                    continue
                if (
                    old is not None
                    and old.issuer_sha256 == entry.issuer_sha256
                    and old.this_update > entry.this_update
                    and old.next_update > now
                ):
                    log.warning("CRL source %s went back in time; keeping the newer CRL", source)
                    entry = old
                loaded[source] = entry
                statuses.append(
                    CrlSourceStatus(
                        source,
                        True,
                        "loaded",
                        entry.issuer_sha256,
                        entry.this_update,
                        entry.next_update,
                        len(entry.revoked),
                    )
                )
            index: dict[str, dict[Hashable | None, _CrlEntry]] = {}
            for entry in loaded.values():
                per_issuer = index.setdefault(entry.issuer_sha256, {})
                for scope in entry.scopes or (None,):
                    current = per_issuer.get(scope)
                    if current is None or entry.this_update > current.this_update:
                        per_issuer[scope] = entry
            self._by_source = loaded
            self._index = index  # atomic reference swap
            return statuses

    def _load(self, source: str, now: datetime) -> _CrlEntry:
        try:
            data = self._fetch(source)
        except Exception as exc:  # any I/O or HTTP failure just makes this source unusable
            raise _Unusable(f"cannot fetch: {type(exc).__name__}: {exc}") from exc
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                crl = x509.load_pem_x509_crl(data)
            else:
                crl = x509.load_der_x509_crl(data)
        except Exception as exc:  # parse errors of cryptography are not all ValueError
            raise _Unusable("not a DER or PEM CRL") from exc
        try:
            anchor = self._anchors.for_signed_object(
                lambda a: a.subject == crl.issuer and crl.is_signature_valid(a.public_key())
            )
            if anchor is None:
                raise _Unusable("CRL signature does not verify against any trust anchor")
            next_update = crl.next_update_utc
            this_update = crl.last_update_utc
            if next_update is None:
                raise _Unusable("CRL has no nextUpdate")
            if next_update <= now:
                raise _Unusable(f"CRL is stale (nextUpdate {next_update.isoformat()})")
            if this_update > now + CLOCK_SKEW:
                raise _Unusable("CRL thisUpdate is in the future")
            scopes = _crl_scopes(crl)
            revoked = frozenset(rc.serial_number for rc in crl)
        except _Unusable:
            raise
        except Exception as exc:  # lazily parsed, malformed fields
            raise _Unusable(f"malformed CRL ({type(exc).__name__})") from exc
        return _CrlEntry(
            source=source,
            issuer_sha256=self._anchors.fingerprint(anchor),
            scopes=scopes,
            this_update=this_update,
            next_update=next_update,
            revoked=revoked,
        )

    def check(self, validated: ValidatedCertificate, now: datetime) -> None:
        per_issuer = self._index.get(validated.issuer_sha256)
        if not per_issuer:
            raise _unavailable("no usable CRL for the issuing CA")
        entries: list[_CrlEntry] = []
        full = per_issuer.get(None)
        if full is not None:
            entries.append(full)
        if len(per_issuer) > (1 if full is not None else 0):
            for scope in _certificate_scopes(validated.certificate):
                entry = per_issuer.get(scope)
                if entry is not None:
                    entries.append(entry)
        fresh = [e for e in entries if now < e.next_update]
        if not fresh:
            raise _unavailable(
                "CRL for the issuing CA is stale" if entries else "no CRL covers this certificate"
            )
        serial = validated.serial_number
        for entry in fresh:
            if serial in entry.revoked:
                raise _revoked("certificate is listed on the CRL")


# --------------------------------------------------------------------------------------------
# OCSP
# --------------------------------------------------------------------------------------------

PostFunction = Callable[[str, bytes, float], bytes]
_OCSP_SIGNATURE_ALGORITHMS = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
    }
)


def default_post(url: str, body: bytes, timeout: float) -> bytes:
    """POST an OCSP request with ``requests``; any non-200 answer raises."""
    import requests

    with requests.post(
        url,
        data=body,
        headers={
            "Content-Type": "application/ocsp-request",
            "Accept": "application/ocsp-response",
        },
        timeout=timeout,
        stream=True,
    ) as response:
        response.raise_for_status()
        data = response.raw.read(MAX_OCSP_RESPONSE_BYTES + 1, decode_content=True)
    if len(data) > MAX_OCSP_RESPONSE_BYTES:
        raise ValueError("OCSP response too large")
    return data


class OcspCache:
    """Bounded, thread-safe cache of definite OCSP answers, valid until ``next_update``."""

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max = max_entries
        self._lock = threading.Lock()
        self._data: OrderedDict[tuple[str, int], tuple[str, datetime]] = OrderedDict()

    def get(self, key: tuple[str, int], now: datetime) -> str | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            status, expires = item
            if now >= expires:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return status

    def put(self, key: tuple[str, int], status: str, expires: datetime) -> None:
        with self._lock:
            self._data[key] = (status, expires)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def _responder_id_matches(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    key_id = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    return response.responder_key_hash == key_id


def _ocsp_signature_valid(response: ocsp.OCSPResponse, signer: x509.Certificate) -> bool:
    if response.signature_algorithm_oid not in _OCSP_SIGNATURE_ALGORITHMS:
        return False
    algorithm = response.signature_hash_algorithm
    if algorithm is None:
        return False
    key = signer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(
                response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm
            )
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def _is_delegated_responder(
    cert: x509.Certificate, issuer: x509.Certificate, now: datetime
) -> bool:
    """RFC 6960 4.2.2.2: issued by the CA itself, EKU id-kp-OCSPSigning, valid now."""
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return False
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
        return False
    return is_signed_by(cert, issuer)


class OcspRevocation:
    """Revocation by OCSP (RFC 6960) against a configured responder URL.

    Each query carries a fresh nonce.  A response is accepted only if it is ``successful``,
    signed by the issuing CA or by a delegated responder certificate that this CA issued
    with EKU OCSPSigning, echoes our nonce when it carries one, answers for our CertID, has
    ``thisUpdate`` not in the future (5 min skew) and ``nextUpdate`` not past.  GOOD and
    REVOKED answers are cached per (issuer, serial) until ``nextUpdate``; UNKNOWN and every
    failure raise ``revocation_unavailable``.

    Responses without ``nextUpdate`` are accepted only if ``thisUpdate`` is younger than
    ``max_age_without_next_update`` and are not cached: without a nonce they could
    otherwise be replayed forever.
    """

    def __init__(
        self,
        url: str,
        post: PostFunction | None = None,
        timeout: float = 5.0,
        cache: OcspCache | None = None,
        *,
        max_age_without_next_update: timedelta = timedelta(hours=1),
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"OCSP URL must be http(s): {url!r}")
        self.url = url
        self._post = post or default_post
        self._timeout = timeout
        self.cache = cache if cache is not None else OcspCache()
        self._max_age = max_age_without_next_update

    def check(self, validated: ValidatedCertificate, now: datetime) -> None:
        key = (validated.issuer_sha256, validated.serial_number)
        cached = self.cache.get(key, now)
        if cached == "good":
            return
        if cached == "revoked":
            raise _revoked("certificate is revoked (OCSP, cached)")
        status, expires = self._query(validated, now)
        if expires is not None:
            self.cache.put(key, status, expires)
        if status == "revoked":
            raise _revoked("certificate is revoked (OCSP)")

    def _query(
        self, validated: ValidatedCertificate, now: datetime
    ) -> tuple[Literal["good", "revoked"], datetime | None]:
        cert, issuer = validated.certificate, validated.issuer_certificate
        nonce = secrets.token_bytes(32)
        # SHA-1 in the CertID is an identifier, not a signature; it is what responders expect.
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303
            .add_extension(x509.OCSPNonce(nonce), critical=False)
            .build()
        )
        try:
            data = self._post(
                self.url, request.public_bytes(serialization.Encoding.DER), self._timeout
            )
        except Exception as exc:  # timeouts, refused connections, HTTP 5xx, ...
            raise _unavailable(f"OCSP responder unreachable ({type(exc).__name__})") from exc
        try:
            response = ocsp.load_der_ocsp_response(data)
            return self._evaluate(response, request, validated, nonce, now)
        except CardError:
            raise
        except Exception as exc:  # any parse failure of the response means "no answer"
            raise _unavailable(f"malformed OCSP response ({type(exc).__name__})") from exc

    def _evaluate(
        self,
        response: ocsp.OCSPResponse,
        request: ocsp.OCSPRequest,
        validated: ValidatedCertificate,
        nonce: bytes,
        now: datetime,
    ) -> tuple[Literal["good", "revoked"], datetime | None]:
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise _unavailable(f"OCSP responder answered {response.response_status.name}")
        issuer = validated.issuer_certificate
        candidates = [issuer] + [
            c for c in response.certificates if _is_delegated_responder(c, issuer, now)
        ]
        if not any(
            _responder_id_matches(response, c) and _ocsp_signature_valid(response, c)
            for c in candidates
        ):
            raise _unavailable("OCSP response is not signed by the CA or its delegated responder")
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            echoed = None
        if echoed is not None and echoed != nonce:
            raise _unavailable("OCSP nonce mismatch")

        single = None
        for candidate in response.responses:
            if candidate.serial_number != validated.serial_number:
                continue
            if not isinstance(candidate.hash_algorithm, type(request.hash_algorithm)):
                continue
            if (
                candidate.issuer_key_hash == request.issuer_key_hash
                and candidate.issuer_name_hash == request.issuer_name_hash
            ):
                single = candidate
                break
        if single is None:
            raise _unavailable("OCSP response does not answer for this certificate")

        this_update = single.this_update_utc
        next_update = single.next_update_utc
        if this_update > now + CLOCK_SKEW:
            raise _unavailable("OCSP thisUpdate is in the future")
        if next_update is not None and next_update <= now:
            raise _unavailable("OCSP response is stale (nextUpdate passed)")
        if next_update is None and this_update < now - self._max_age:
            raise _unavailable("OCSP response without nextUpdate is too old")

        status = single.certificate_status
        if status == ocsp.OCSPCertStatus.GOOD:
            return "good", next_update
        if status == ocsp.OCSPCertStatus.REVOKED:
            return "revoked", next_update
        raise _unavailable("OCSP responder does not know this certificate")


# --------------------------------------------------------------------------------------------
# Combinations and adapters
# --------------------------------------------------------------------------------------------


class OcspThenCrl:
    """OCSP first; if OCSP cannot answer, the CRL decides (as the national My Key Platform).

    A REVOKED answer from OCSP is final; the CRL is never asked to overrule it.
    """

    def __init__(self, ocsp_checker: RevocationChecker, crl_checker: RevocationChecker):
        self.ocsp = ocsp_checker
        self.crl = crl_checker

    def check(self, validated: ValidatedCertificate, now: datetime) -> None:
        try:
            self.ocsp.check(validated, now)
            return
        except CardError as exc:
            if exc.code != "revocation_unavailable":
                raise
            ocsp_error = exc
        log.info("OCSP unavailable (%s); falling back to CRL", ocsp_error.message)
        try:
            self.crl.check(validated, now)
        except CardError as exc:
            if exc.code == "revocation_unavailable":
                raise _unavailable(f"OCSP: {ocsp_error.message}; CRL: {exc.message}") from exc
            raise


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

    def __init__(self, api: PlatformValidationApi) -> None:
        self.api = api

    def check(self, validated: ValidatedCertificate, now: datetime) -> None:
        der = validated.certificate.public_bytes(serialization.Encoding.DER)
        try:
            status = self.api.status(validated.issuer, validated.serial, der)
        except Exception as exc:  # the platform's failures must not become "good"
            raise _unavailable(f"platform validation failed ({type(exc).__name__})") from exc
        if status == "good":
            return
        if status == "revoked":
            raise _revoked("certificate is revoked (platform operator)")
        raise _unavailable("platform operator does not know the certificate status")


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


__all__ = [
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
    "RevocationChecker",
    "build_revocation_checker",
    "default_fetch",
    "default_post",
]
