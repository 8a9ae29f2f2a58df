"""Helpers shared by the card-bridge tests (a uniquely named module: `conftest` is not
importable reliably when several test folders have one)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from card_bridge.sim import VirtualJpkiCard, VpcdCardClient

REPO = Path(__file__).resolve().parents[2]
VPCD_PORT = int(os.environ.get("MYNAGATE_VPCD_PORT", "35963"))
# vpcd names its slots "Virtual PCD 00 00" (port 35963), "Virtual PCD 00 01" (35964), ...
VPCD_READER = os.environ.get("MYNAGATE_VPCD_READER", "Virtual PCD 00 00")
EMPTY_READER = os.environ.get("MYNAGATE_VPCD_EMPTY_READER", "Virtual PCD 00 01")
PIN = "1234"
CHALLENGE = "c" * 43


def unavailable(reason: str) -> None:
    """Skip locally; fail on CI, where the environment is supposed to be complete."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


# ----------------------------------------------------------------------------------------
# Test PKI (self-signed stand-in until `idp jpki test-pki` is available)
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PkiCard:
    cert_der: bytes
    key: rsa.RSAPrivateKey
    cert_path: Path
    key_path: Path

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        pk = x509.load_der_x509_certificate(self.cert_der).public_key()
        assert isinstance(pk, rsa.RSAPublicKey)
        return pk


class SimTransport:
    """In-process transport straight into the simulator (no PC/SC): for unit tests."""

    def __init__(self, card: VirtualJpkiCard) -> None:
        self.card = card
        self.closed = False

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        r = self.card.process(apdu)
        return r[:-2], int.from_bytes(r[-2:], "big")

    def close(self) -> None:
        self.closed = True
        self.card.power_cycle()  # like SCARD_RESET_CARD on disconnect


def wait_for(pred: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


@dataclass
class Sim:
    card: VirtualJpkiCard
    client: VpcdCardClient
    reader: str

    def card_present(self) -> bool:
        from card_bridge.card import pcsc_status

        return self.reader in pcsc_status(self.reader).readers_with_card

    def remove(self) -> None:
        self.client.remove()
        assert wait_for(lambda: not self.card_present(), 10), "card still present after remove"

    def insert(self) -> None:
        self.client.insert()
        assert wait_for(self.card_present, 10), "card did not reappear"


class FakeProvider:
    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []
        self.origin_override: str | None = None
        self.client_name = "Sakura Elementary"
        self.school_name: str | None = "さくら小学校"
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path != "/login/card/pair/ABCD-1234":
                    self._json(404, {"error": "not_found", "error_description": "unknown code"})
                    return
                self._json(200, {"challenge": CHALLENGE, "origin": outer.origin,
                                 "client_name": outer.client_name,
                                 "school_name": outer.school_name,
                                 "started_at": "2026-04-08T08:40:05+09:00"})  # fmt: skip

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.posted.append(body)
                self._json(200, {"status": "ok"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return self.origin_override or self.url
