"""Revocation by CRLs loaded from files or URLs (the J-LIS CRL, or a platform's copy).

J-LIS gives revocation data only to registered verifiers (directly or through a platform
operator), and the CA certificates point to a directory name rather than a URL, so CRL
sources are configuration, never read from the certificate.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from idp.jpki.path import ValidatedCertificate, require_aware
from idp.jpki.revocation.base import CLOCK_SKEW, revoked_error, unavailable_error
from idp.jpki.trust import TrustAnchors

log = logging.getLogger(__name__)

#: CRLs of a national CA can be large; refuse anything beyond this to bound memory.
MAX_CRL_BYTES = 512 * 1024 * 1024


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

    #: The label of this source's answers (``revocation.base.checked``).
    source = "crl"

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

    def loaded(self) -> list[CrlSourceStatus]:
        """The CRLs held now, one status per source that has one (readiness and the CRL-age
        gauges read it; a held CRL may have passed its nextUpdate since the last refresh)."""
        return [CrlSourceStatus(entry.source, True, "loaded", entry.issuer_sha256,
                                entry.this_update, entry.next_update, len(entry.revoked))
                for entry in self._by_source.values()]

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
            raise unavailable_error("no usable CRL for the issuing CA")
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
            raise unavailable_error(
                "CRL for the issuing CA is stale" if entries else "no CRL covers this certificate"
            )
        serial = validated.serial_number
        for entry in fresh:
            if serial in entry.revoked:
                raise revoked_error("certificate is listed on the CRL")
