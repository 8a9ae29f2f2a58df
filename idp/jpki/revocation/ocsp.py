"""Revocation by OCSP (RFC 6960) against a configured responder URL, with a bounded cache.

The OCSP URL is configuration, never read from the certificate: J-LIS answers registered
verifiers only, at an address given to them.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from idp.jpki.errors import CardError
from idp.jpki.path import ValidatedCertificate
from idp.jpki.revocation.base import CLOCK_SKEW, revoked_error, unavailable_error
from idp.jpki.trust import is_signed_by

MAX_OCSP_RESPONSE_BYTES = 1024 * 1024

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

    #: The label of this source's answers (``revocation.base.checked``).
    source = "ocsp"

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
            raise revoked_error("certificate is revoked (OCSP, cached)")
        status, expires = self._query(validated, now)
        if expires is not None:
            self.cache.put(key, status, expires)
        if status == "revoked":
            raise revoked_error("certificate is revoked (OCSP)")

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
            raise unavailable_error(f"OCSP responder unreachable ({type(exc).__name__})") from exc
        try:
            response = ocsp.load_der_ocsp_response(data)
            return self._evaluate(response, request, validated, nonce, now)
        except CardError:
            raise
        except Exception as exc:  # any parse failure of the response means "no answer"
            raise unavailable_error(f"malformed OCSP response ({type(exc).__name__})") from exc

    def _evaluate(
        self,
        response: ocsp.OCSPResponse,
        request: ocsp.OCSPRequest,
        validated: ValidatedCertificate,
        nonce: bytes,
        now: datetime,
    ) -> tuple[Literal["good", "revoked"], datetime | None]:
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise unavailable_error(f"OCSP responder answered {response.response_status.name}")
        issuer = validated.issuer_certificate
        candidates = [issuer] + [
            c for c in response.certificates if _is_delegated_responder(c, issuer, now)
        ]
        if not any(
            _responder_id_matches(response, c) and _ocsp_signature_valid(response, c)
            for c in candidates
        ):
            raise unavailable_error(
                "OCSP response is not signed by the CA or its delegated responder"
            )
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            echoed = None
        if echoed is not None and echoed != nonce:
            raise unavailable_error("OCSP nonce mismatch")

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
            raise unavailable_error("OCSP response does not answer for this certificate")

        this_update = single.this_update_utc
        next_update = single.next_update_utc
        if this_update > now + CLOCK_SKEW:
            raise unavailable_error("OCSP thisUpdate is in the future")
        if next_update is not None and next_update <= now:
            raise unavailable_error("OCSP response is stale (nextUpdate passed)")
        if next_update is None and this_update < now - self._max_age:
            raise unavailable_error("OCSP response without nextUpdate is too old")

        status = single.certificate_status
        if status == ocsp.OCSPCertStatus.GOOD:
            return "good", next_update
        if status == ocsp.OCSPCertStatus.REVOKED:
            return "revoked", next_update
        raise unavailable_error("OCSP responder does not know this certificate")
