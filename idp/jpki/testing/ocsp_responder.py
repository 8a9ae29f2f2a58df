"""A small OCSP responder (RFC 6960) for the *test* CA: tests and the local demo only.

It answers POST (``application/ocsp-request``) and GET (``/<url-encoded base64 request>``,
RFC 6960 appendix A), reports REVOKED for serials in a set that can change at run time,
echoes the request nonce, and signs with a delegated responder certificate (or the CA key).
For failure tests it can go "down" (HTTP 500 or a closed connection) or answer with a wrong
nonce.  ``python -m idp.jpki.testing.ocsp_responder --pki DIR --port 8889`` serves a test PKI
written by :mod:`idp.jpki.testing.pki_dir`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import logging
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
NonceMode = Literal["echo", "omit", "wrong"]
DownMode = Literal["500", "close"]


class OcspResponderServer:
    """Threaded HTTP OCSP responder on 127.0.0.1 (port 0 = any free port).

    Sign with ``responder_cert``/``responder_key`` (delegated, included in the response) or,
    if those are not given, directly with ``root_key``.
    """

    def __init__(
        self,
        root_cert: x509.Certificate,
        root_key: rsa.RSAPrivateKey | None = None,
        *,
        responder_cert: x509.Certificate | None = None,
        responder_key: rsa.RSAPrivateKey | None = None,
        revoked: Iterable[int] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        validity: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if responder_cert is not None and responder_key is not None:
            self._signer_cert, self._signer_key = responder_cert, responder_key
            self._include = [responder_cert]
        elif root_key is not None:
            self._signer_cert, self._signer_key = root_cert, root_key
            self._include = []
        else:
            raise ValueError("need root_key, or responder_cert and responder_key")
        self.root_cert = root_cert
        self._host, self._port = host, port
        self.validity = validity
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._revoked: set[int] = set(revoked)
        self._unknown: set[int] = set()
        self._down: DownMode | None = None
        self.nonce_mode: NonceMode = "echo"
        self.request_count = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._issuer_hashes: dict[type, tuple[bytes, bytes]] = {}

    # -- control ------------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving in a daemon thread and return the base URL."""
        if self._server is not None:
            return self.url
        handler = type("Handler", (_Handler,), {"responder": self})
        self._server = ThreadingHTTPServer((self._host, self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # makes stop() fast
            name="ocsp-responder",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("responder not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def revoke(self, serial: int) -> None:
        with self._lock:
            self._revoked.add(serial)

    def unrevoke(self, serial: int) -> None:
        with self._lock:
            self._revoked.discard(serial)

    def mark_unknown(self, serial: int) -> None:
        """Answer UNKNOWN for ``serial`` (as a responder that has never heard of it)."""
        with self._lock:
            self._unknown.add(serial)

    def set_down(self, down: bool, mode: DownMode = "500") -> None:
        """Go down: answer HTTP 500 (``"500"``) or close the connection (``"close"``)."""
        with self._lock:
            self._down = mode if down else None

    def __enter__(self) -> OcspResponderServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- OCSP ---------------------------------------------------------------------------------

    def _expected_hashes(self, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
        key = type(algorithm)
        if key not in self._issuer_hashes:
            # Let cryptography compute the CertID hashes of our CA for this algorithm.
            probe = (
                ocsp.OCSPRequestBuilder()
                .add_certificate(self.root_cert, self.root_cert, algorithm)
                .build()
            )
            self._issuer_hashes[key] = (probe.issuer_name_hash, probe.issuer_key_hash)
        return self._issuer_hashes[key]

    def respond(self, der_request: bytes) -> bytes:
        """Return the DER OCSP response for a DER request (also usable without HTTP)."""
        with self._lock:
            self.request_count += 1
            revoked_set, unknown_set = set(self._revoked), set(self._unknown)
            nonce_mode = self.nonce_mode
        try:
            request = ocsp.load_der_ocsp_request(der_request)
        except ValueError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if (request.issuer_name_hash, request.issuer_key_hash) != self._expected_hashes(
            request.hash_algorithm
        ):
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        now = self._clock().replace(microsecond=0)
        serial = request.serial_number
        if serial in revoked_set:
            status, revocation_time = ocsp.OCSPCertStatus.REVOKED, now - timedelta(minutes=1)
        elif serial in unknown_set:
            status, revocation_time = ocsp.OCSPCertStatus.UNKNOWN, None
        else:
            status, revocation_time = ocsp.OCSPCertStatus.GOOD, None
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=serial,
                algorithm=request.hash_algorithm,
                cert_status=status,
                this_update=now,
                next_update=now + self.validity,
                revocation_time=revocation_time,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self._signer_cert)
        )
        if self._include:
            builder = builder.certificates(self._include)
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            nonce = None
        if nonce is not None and nonce_mode != "omit":
            if nonce_mode == "wrong":
                nonce = secrets.token_bytes(len(nonce))
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.sign(self._signer_key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


class _Handler(BaseHTTPRequestHandler):
    responder: OcspResponderServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        log.debug("ocsp-responder: " + format, *args)

    def _down(self) -> bool:
        mode = self.responder._down
        if mode is None:
            return False
        if mode == "close":
            self.close_connection = True
        else:
            self._send(500, b"responder down\n", "text/plain")
        return True

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, der: bytes) -> None:
        self._send(200, self.responder.respond(der), "application/ocsp-response")

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 < length <= MAX_REQUEST_BYTES:
            self.close_connection = True
            self._send(400, b"bad length\n", "text/plain")
            return
        body = self.rfile.read(length)
        if self._down():
            return
        if self.headers.get_content_type() != "application/ocsp-request":
            self._send(415, b"expected application/ocsp-request\n", "text/plain")
            return
        self._answer(body)

    def do_GET(self) -> None:  # noqa: N802
        if self._down():
            return
        encoded = unquote(self.path.lstrip("/"))
        try:
            der = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            self._send(
                200,
                _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
                "application/ocsp-response",
            )
            return
        self._answer(der)


def main(argv: list[str] | None = None) -> int:
    from idp.jpki.testing.pki_dir import load_test_pki

    parser = argparse.ArgumentParser(
        prog="python -m idp.jpki.testing.ocsp_responder", description=__doc__
    )
    parser.add_argument("--pki", required=True, help="directory written by testing.pki_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8889)
    parser.add_argument("--revoke", nargs="*", default=[], help="extra revoked serials (hex)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    pki = load_test_pki(args.pki)
    server = OcspResponderServer(
        pki.root.certificate,
        responder_cert=pki.responder.certificate,
        responder_key=pki.responder.private_key,
        revoked=pki.revoked | {int(s, 16) for s in args.revoke},
        host=args.host,
        port=args.port,
    )
    url = server.start()
    subject = pki.root.certificate.subject.rfc4514_string()
    print(f"OCSP responder for {subject} at {url}", flush=True)
    try:
        assert server._thread is not None
        while server._thread.is_alive():
            server._thread.join(timeout=1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
