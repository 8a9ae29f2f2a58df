"""The JPKI AP as seen from a reader, with a real PIN retry counter.

Deliberately strict where a real card is strict (6982 signing without VERIFY, 6984 once
blocked, 6A82 for every other AID) so the bridge's error handling is exercised, and it
records every APDU it receives so tests can prove the allow-list held.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from card_bridge import apdu as A

MAX_TRIES = 3
CERT_EF_MIN_SIZE = 2560  # real EF 000A is larger than the certificate: FF filler follows
TOKEN_INFO = {
    "plastic": b"JPKIAPICCTOKEN2",
    "android": b"JPKIAPGPSETOKEN",
    "iphone": b"JPKIAPIOSTOKEN",
}

SW_OK = b"\x90\x00"


def _sw(code: int) -> bytes:
    return code.to_bytes(2, "big")


def make_atr(historical: bytes = b"MYNAGATE-SIM") -> bytes:
    """Contactless-style PC/SC ATR (3B 8n 80 01 ... TCK), the shape an NFC reader reports
    for a MyNumber card; T=1 so 256-byte signatures come back in one response."""
    if len(historical) > 15:
        raise ValueError("at most 15 historical bytes")
    body = bytes([0x80 | len(historical), 0x80, 0x01]) + historical
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes([tck])


@dataclass
class _Session:
    ap_selected: bool = False
    ef: int | None = None
    verified: bool = False


class VirtualJpkiCard:
    def __init__(
        self,
        cert_der: bytes,
        private_key: rsa.RSAPrivateKey,
        pin: str = "1234",
        *,
        token: str = "plastic",  # noqa: S107 - token *kind*, not a secret
        state_file: str | os.PathLike[str] | None = None,
        tries_left: int = MAX_TRIES,
        ca_cert_der: bytes = b"",
    ) -> None:
        if not A.is_valid_pin(pin):
            raise ValueError("the simulator's PIN must be 4 ASCII digits")
        if token not in TOKEN_INFO:
            raise ValueError(f"token must be one of {sorted(TOKEN_INFO)}")
        if cert_der[:2] != b"\x30\x82":
            raise ValueError("certificate must be DER with a 2-byte length")
        self.cert_der = cert_der
        self.private_key = private_key
        self._pin = pin.encode("ascii")
        self.token = token
        self.state_file = Path(state_file) if state_file else None
        self._lock = threading.RLock()
        self._session = _Session()
        self.received: list[bytes] = []  # every APDU, in order, across power cycles
        self.atr = make_atr()
        self._tries = tries_left
        if self.state_file and self.state_file.exists():
            self._tries = int(json.loads(self.state_file.read_text())["tries_left"])
        size = max(CERT_EF_MIN_SIZE, len(cert_der) + 256)
        self._files: dict[int, bytes] = {
            A.EF_TOKEN_INFO: TOKEN_INFO[token].ljust(16, b"\x00"),
            A.EF_AUTH_CERT: cert_der + b"\xff" * (size - len(cert_der)),
            A.EF_AUTH_CA_CERT: (ca_cert_der or cert_der) + b"\xff" * 256,
        }

    @classmethod
    def from_files(
        cls,
        cert_path: str | os.PathLike[str],
        key_path: str | os.PathLike[str],
        pin: str,
        **kwargs: object,
    ) -> VirtualJpkiCard:
        cert_bytes = Path(cert_path).read_bytes()
        if cert_bytes.startswith(b"-----BEGIN"):
            from cryptography import x509

            cert_bytes = x509.load_pem_x509_certificate(cert_bytes).public_bytes(
                serialization.Encoding.DER
            )
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the JPKI key is RSA")
        return cls(cert_bytes, key, pin, **kwargs)  # type: ignore[arg-type]

    # -- state -----------------------------------------------------------------------
    @property
    def tries_left(self) -> int:
        return self._tries

    @property
    def verified(self) -> bool:
        return self._session.verified

    def set_tries_left(self, n: int) -> None:
        """Set (and persist) the PIN retry counter, e.g. to start a demo at the last try."""
        if not 0 <= n <= MAX_TRIES:
            raise ValueError(f"tries left must be 0..{MAX_TRIES}")
        self._set_tries(n)

    def _set_tries(self, n: int) -> None:
        self._tries = n
        if self.state_file:
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"tries_left": n}))
            tmp.replace(self.state_file)

    def power_cycle(self) -> None:
        """Power off/on/reset: selection and the verified PIN state are lost (not tries)."""
        with self._lock:
            self._session = _Session()

    # -- APDU processing -------------------------------------------------------------
    def process(self, capdu: bytes) -> bytes:
        with self._lock:
            self.received.append(bytes(capdu))
            try:
                return self._process(bytes(capdu))
            except Exception:  # a simulator bug must look like a card error, not hang vpcd
                return _sw(0x6F00)

    def _process(self, c: bytes) -> bytes:
        if len(c) < 4:
            return _sw(0x6700)
        cla, ins, p1, p2 = c[0], c[1], c[2], c[3]
        body = c[4:]
        if ins == 0xA4 and cla == 0x00:
            return self._select(p1, body)
        if ins == 0xB0 and cla == 0x00:
            return self._read(p1, p2, body)
        if ins == 0x20 and cla == 0x00 and p1 == 0x00 and p2 == 0x80:
            return self._verify(body)
        if ins == 0x2A and cla == 0x80 and p1 == 0x00 and p2 == 0x80:
            return self._sign(body)
        if cla not in (0x00, 0x80):
            return _sw(0x6E00)
        return _sw(0x6D00)

    def _select(self, p1: int, body: bytes) -> bytes:
        if not body:
            return _sw(0x6700)
        lc = body[0]
        data = body[1 : 1 + lc]
        if len(data) != lc:
            return _sw(0x6700)
        if p1 == 0x04:  # by AID
            if data == A.JPKI_AP_AID:
                self._session = _Session(ap_selected=True)
                return SW_OK
            # Any other application (券面AP etc.) is absent here; leaving the JPKI AP
            # drops its security state like a real card does.
            self._session = _Session()
            return _sw(0x6A82)
        if p1 == 0x02:  # EF by id under the current DF
            if not self._session.ap_selected or lc != 2:
                return _sw(0x6A82)
            ef = int.from_bytes(data, "big")
            if ef in self._files or ef in (A.EF_AUTH_KEY, A.EF_AUTH_PIN):
                self._session.ef = ef
                return SW_OK
            return _sw(0x6A82)
        return _sw(0x6A86)

    def _read(self, p1: int, p2: int, body: bytes) -> bytes:
        if p1 & 0x80:
            return _sw(0x6A81)  # short-EF addressing not supported here
        ef = self._session.ef
        if ef not in self._files:
            return _sw(0x6986)  # no current EF / not a transparent file
        if (
            ef == A.EF_AUTH_CERT
            and self.token != "plastic"  # noqa: S105 - token kind
            and not self._session.verified
        ):
            return _sw(0x6982)  # phone tokens: PIN first
        le = body[0] if len(body) == 1 else (256 if not body else -1)
        if le == -1:
            return _sw(0x6700)
        le = le or 256
        content = self._files[ef]
        offset = (p1 << 8) | p2
        if offset >= len(content):
            return _sw(0x6B00)
        chunk = content[offset : offset + le]
        return chunk + (SW_OK if len(chunk) == le else _sw(0x6282))

    def _verify(self, body: bytes) -> bytes:
        if self._session.ef != A.EF_AUTH_PIN:
            return _sw(0x6986)
        if not body:  # status query: spends nothing
            return _sw(0x63C0 | self._tries)
        if len(body) != 5 or body[0] != 4:
            return _sw(0x6700)
        if self._tries == 0:
            return _sw(0x6984)
        if hmac.compare_digest(body[1:], self._pin):
            self._set_tries(MAX_TRIES)
            self._session.verified = True
            return SW_OK
        self._session.verified = False
        self._set_tries(self._tries - 1)
        return _sw(0x63C0 | self._tries)

    def _sign(self, body: bytes) -> bytes:
        if self._session.ef != A.EF_AUTH_KEY:
            return _sw(0x6986)
        if not self._session.verified:
            return _sw(0x6982)
        if not body:
            return _sw(0x6700)
        lc = body[0]
        data = body[1 : 1 + lc]
        if len(data) != lc:
            return _sw(0x6700)
        prefix = A.SHA256_DIGESTINFO_PREFIX
        if lc != len(prefix) + 32 or not data.startswith(prefix):
            return _sw(0x6A80)
        signature = self.private_key.sign(
            data[len(prefix) :], padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
        )
        return signature + SW_OK
