"""Talking to the JPKI application of a MyNumber card.

`JpkiCard` speaks only the allow-listed APDUs of `card_bridge.apdu` over any `Transport`;
`PcscTransport` is the real one (pyscard, imported lazily so the HTTP server still starts
and reports "pcsc unavailable" on a machine without pyscard or pcscd).
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from card_bridge import apdu
from card_bridge.errors import (
    ApduNotAllowed,
    Cancelled,
    CardError,
    CardFailure,
    CardRemoved,
    InvalidPinFormat,
    LastTryNotConfirmed,
    NoCard,
    NoReader,
    NotMyNumberCard,
    NotVerified,
    PinBlocked,
    ReaderBusy,
    WrongPin,
)

__all__ = [
    "AuthResult",
    "CardError",
    "JpkiCard",
    "PcscStatus",
    "PcscTransport",
    "PinSource",
    "TokenKind",
    "Transport",
    "pcsc_status",
    "raise_for_sw",
]

SW_OK = 0x9000
SW_END_OF_FILE = 0x6282  # fewer bytes than Le: end of file reached
SW_WRONG_OFFSET = 0x6B00
SW_NOT_VERIFIED = 0x6982
SW_AUTH_BLOCKED = 0x6983
SW_REF_DATA_UNUSABLE = 0x6984
SW_NOT_FOUND = 0x6A82
MAX_PIN_TRIES = 3


@runtime_checkable
class Transport(Protocol):
    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """Send one command APDU; return (response data, status word)."""
        ...


class TokenKind(enum.Enum):
    PLASTIC = "JPKIAPICCTOKEN2"
    ANDROID = "JPKIAPGPSETOKEN"
    IPHONE = "JPKIAPIOSTOKEN"
    UNKNOWN = ""

    @property
    def pin_before_certificate(self) -> bool:
        # Phone-hosted JPKI (スマホ用電子証明書) refuses to read EF 000A before VERIFY.
        return self in (TokenKind.ANDROID, TokenKind.IPHONE)


@dataclass(frozen=True)
class AuthResult:
    certificate: bytes
    signature: bytes
    token_kind: TokenKind


# (tries_left, last_try) -> PIN, or None when the person cancelled.
PinSource = Callable[[int, bool], "str | None"]


def raise_for_sw(sw: int, *, selecting_ap: bool = False) -> None:
    """Turn every non-9000 status word into a typed exception."""
    if sw == SW_OK:
        return
    if sw & 0xFFF0 == 0x63C0:
        tries = sw & 0x000F
        if tries == 0:
            raise PinBlocked()
        raise WrongPin(tries)
    if sw in (SW_AUTH_BLOCKED, SW_REF_DATA_UNUSABLE):
        raise PinBlocked()
    if sw == SW_NOT_VERIFIED:
        raise NotVerified()
    if sw == SW_NOT_FOUND and selecting_ap:
        raise NotMyNumberCard()
    raise CardFailure(sw)


class JpkiCard:
    """The JPKI AP's user-authentication half, and nothing else.

    Never retries a PIN by itself; a wrong PIN is always returned to the caller, who must
    ask the person again.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._selected_ef: int | None = None

    # -- low level -------------------------------------------------------------------
    def _send(self, command: bytes) -> tuple[bytes, int]:
        if not apdu.is_allowed(command):
            # Second line of defence (PcscTransport checks too): the card never sees it.
            raise ApduNotAllowed(f"refused {apdu.describe(command)}")
        return self.transport.transmit(command)

    def select_jpki_ap(self) -> None:
        _, sw = self._send(apdu.SELECT_JPKI_AP)
        self._selected_ef = None
        raise_for_sw(sw, selecting_ap=True)

    def _select_ef(self, ef: int) -> None:
        _, sw = self._send(apdu.select_ef(ef))
        raise_for_sw(sw)
        self._selected_ef = ef

    def _read(self, offset: int, length: int) -> tuple[bytes, int]:
        return self._send(apdu.read_binary(offset, length))

    # -- reading ---------------------------------------------------------------------
    def token_kind(self) -> TokenKind:
        self._select_ef(apdu.EF_TOKEN_INFO)
        data, sw = self._read(0, 15)
        if sw & 0xFF00 == 0x6C00 and sw & 0xFF:  # "wrong Le, use xx": shorter iPhone token
            data, sw = self._read(0, sw & 0xFF)
        if sw not in (SW_OK, SW_END_OF_FILE):
            raise_for_sw(sw)
        text = data.rstrip(b"\x00\xff ").decode("ascii", "replace")
        for kind in (TokenKind.PLASTIC, TokenKind.ANDROID, TokenKind.IPHONE):
            if text.startswith(kind.value):
                return kind
        return TokenKind.UNKNOWN

    def read_auth_certificate(self) -> bytes:
        """The DER certificate, exactly: EF 000A continues with FF filler after it."""
        self._select_ef(apdu.EF_AUTH_CERT)
        header, sw = self._read(0, 4)
        raise_for_sw(sw)
        if len(header) != 4 or header[0] != 0x30 or header[1] != 0x82:
            raise CardFailure(detail="EF 000A does not start with a DER certificate")
        total = int.from_bytes(header[2:4], "big") + 4
        out = bytearray(header)
        while len(out) < total:
            want = min(apdu.MAX_READ_LE, total - len(out))
            chunk, sw = self._read(len(out), want)
            if sw != SW_OK or not chunk:
                raise_for_sw(sw)  # 6B00 etc. -> CardFailure; 6982 -> NotVerified
                raise CardFailure(sw, "certificate ended early")
            out += chunk[:want]
        return bytes(out)

    # -- PIN -------------------------------------------------------------------------
    def pin_tries_left(self) -> int:
        """Ask the counter (VERIFY without data); spends no try."""
        self._select_ef(apdu.EF_AUTH_PIN)
        _, sw = self._send(apdu.VERIFY_STATUS)
        if sw == SW_OK:
            # Already verified in this card session: a good VERIFY resets the counter.
            return MAX_PIN_TRIES
        if sw & 0xFFF0 == 0x63C0:
            return sw & 0x0F
        if sw in (SW_AUTH_BLOCKED, SW_REF_DATA_UNUSABLE):
            return 0
        raise_for_sw(sw)
        raise CardFailure(sw)  # pragma: no cover - raise_for_sw always raises here

    def verify_pin(self, pin: str, *, confirmed_last_try: bool = False) -> None:
        if not apdu.is_valid_pin(pin):
            # Checked before anything is sent: a malformed PIN must not cost a try.
            raise InvalidPinFormat()
        tries = self.pin_tries_left()  # also selects EF 0018
        if tries == 0:
            raise PinBlocked()
        if tries == 1 and not confirmed_last_try:
            raise LastTryNotConfirmed()
        _, sw = self._send(apdu.verify(pin))
        raise_for_sw(sw)

    # -- signing ---------------------------------------------------------------------
    def sign_sha256_digest(self, digest32: bytes) -> bytes:
        if len(digest32) != 32:
            raise ValueError("a SHA-256 digest is 32 bytes")
        self._select_ef(apdu.EF_AUTH_KEY)
        sig, sw = self._send(apdu.compute_signature(digest32))
        raise_for_sw(sw)
        if len(sig) not in (128, 256, 384, 512):
            raise CardFailure(sw, f"unexpected signature length {len(sig)}")
        return sig

    # -- the whole flow --------------------------------------------------------------
    def authenticate(
        self,
        digest32: bytes,
        pin_source: PinSource,
        on_pin_accepted: Callable[[], None] | None = None,
    ) -> AuthResult:
        """Select, read the certificate (before or after the PIN, as the token needs),
        ask for the PIN once, verify, sign `digest32`.

        The certificate is read first on a plastic card so a wrong card (or a broken one)
        fails before the child is asked for a PIN.
        """
        self.select_jpki_ap()
        kind = self.token_kind()
        cert: bytes | None = None
        if not kind.pin_before_certificate:
            try:
                cert = self.read_auth_certificate()
            except NotVerified:
                cert = None  # an unknown token that wants the PIN first: read it after
        tries = self.pin_tries_left()
        if tries == 0:
            raise PinBlocked()
        last_try = tries == 1
        pin = pin_source(tries, last_try)
        if pin is None:
            raise Cancelled()
        # The prompt only returns a PIN on the last try after the person confirmed it.
        self.verify_pin(pin, confirmed_last_try=last_try)
        if on_pin_accepted is not None:
            on_pin_accepted()  # told to the person at once: the signing may still fail
        if cert is None:
            cert = self.read_auth_certificate()
        signature = self.sign_sha256_digest(digest32)
        return AuthResult(certificate=cert, signature=signature, token_kind=kind)


# ---------------------------------------------------------------------------------------
# PC/SC
# ---------------------------------------------------------------------------------------


def _u32(code: int) -> int:
    # pyscard returns HRESULTs signed on some platforms and unsigned on others.
    return code & 0xFFFFFFFF


_NO_SERVICE = {0x8010001D, 0x8010001E}  # SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED
_NO_READERS = {0x8010002E, 0x80100009, 0x80100017}  # none / unknown / unavailable
_NO_CARD = {0x8010000C, 0x80100066, 0x80100067}  # no card / unresponsive / unpowered
_REMOVED = {
    0x80100069,  # SCARD_W_REMOVED_CARD
    0x80100068,  # SCARD_W_RESET_CARD: someone reset it; our PIN state is gone too
    0x8010000C,  # SCARD_E_NO_SMARTCARD (during a transmit)
    0x80100016,  # SCARD_E_NOT_TRANSACTED (vpcd/NFC readers report a lost card this way)
    0x80100017,  # SCARD_E_READER_UNAVAILABLE (reader unplugged mid-way)
    0x8010002F,  # SCARD_E_COMM_DATA_LOST
    0x80100013,  # SCARD_F_COMM_ERROR
    0x80100003,  # SCARD_E_INVALID_HANDLE
}
_BUSY = {0x8010000B, 0x8010000A}  # SCARD_E_SHARING_VIOLATION, SCARD_E_TIMEOUT


def _scard() -> Any:
    try:
        from smartcard import scard
    except ImportError as exc:  # pyscard not installed: report, never crash the bridge
        raise NoReader("pyscard is not installed") from exc
    return scard


@dataclass
class PcscStatus:
    pcsc: str  # "ok" | "unavailable"
    readers: list[str] = field(default_factory=list)
    readers_with_card: list[str] = field(default_factory=list)
    detail: str | None = None

    @property
    def reader(self) -> bool:
        return bool(self.readers)

    @property
    def card(self) -> bool:
        return bool(self.readers_with_card)


def _establish(scard: Any) -> Any:
    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != 0:
        raise NoReader(f"PC/SC service unavailable ({scard.SCardGetErrorMessage(hr)})")
    return ctx


def _list_readers(scard: Any, ctx: Any) -> list[str]:
    hr, readers = scard.SCardListReaders(ctx, [])
    if hr != 0:
        if _u32(hr) in _NO_READERS:
            return []
        raise NoReader(scard.SCardGetErrorMessage(hr))
    return list(readers)


def _readers_with_card(scard: Any, ctx: Any, readers: list[str]) -> list[str]:
    if not readers:
        return []
    hr, states = scard.SCardGetStatusChange(
        ctx, 0, [(r, scard.SCARD_STATE_UNAWARE) for r in readers]
    )
    if hr != 0:
        return []
    present = []
    for name, event_state, _atr in states:
        if event_state & scard.SCARD_STATE_PRESENT and not event_state & scard.SCARD_STATE_MUTE:
            present.append(name)
    return present


def pcsc_status(reader: str | None = None) -> PcscStatus:
    """What the bridge can see right now; never raises."""
    try:
        scard = _scard()
        ctx = _establish(scard)
    except CardError as exc:
        return PcscStatus(pcsc="unavailable", detail=exc.detail)
    try:
        readers = _list_readers(scard, ctx)
        if reader is not None:
            readers = [r for r in readers if r == reader]
        return PcscStatus(
            pcsc="ok", readers=readers, readers_with_card=_readers_with_card(scard, ctx, readers)
        )
    except CardError as exc:
        return PcscStatus(pcsc="unavailable", detail=exc.detail)
    finally:
        scard.SCardReleaseContext(ctx)


class PcscTransport:
    """pyscard-backed transport: the first reader holding a card, or the named reader.

    Connects EXCLUSIVELY so no other application can slip commands in between our VERIFY
    and COMPUTE DIGITAL SIGNATURE, and resets the card on close so the verified PIN state
    does not outlive our operation.
    """

    def __init__(self, reader: str | None = None) -> None:
        self.reader_name = reader
        self.reader: str | None = None
        self._scard: Any = None
        self._ctx: Any = None
        self._card: Any = None
        self._protocol: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> PcscTransport:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> str:
        scard = self._scard = _scard()
        self._ctx = _establish(scard)
        try:
            readers = _list_readers(scard, self._ctx)
            if self.reader_name is not None:
                if self.reader_name not in readers:
                    raise NoReader(f"reader {self.reader_name!r} not found")
                candidates = [self.reader_name]
            else:
                if not readers:
                    raise NoReader("no PC/SC reader")
                candidates = _readers_with_card(scard, self._ctx, readers)
                if not candidates:
                    raise NoCard("no reader holds a card")
            last_error: CardError = NoCard()
            for name in candidates:
                hr, card, proto = scard.SCardConnect(
                    self._ctx,
                    name,
                    scard.SCARD_SHARE_EXCLUSIVE,
                    scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
                )
                if hr == 0:
                    self._card, self._protocol, self.reader = card, proto, name
                    return name
                last_error = self._map_connect_error(hr)
            raise last_error
        except BaseException:
            self._release_context()
            raise

    def _map_connect_error(self, hr: int) -> CardError:
        code = _u32(hr)
        msg = self._scard.SCardGetErrorMessage(hr)
        if code in _BUSY:
            return ReaderBusy(msg)
        if code in _NO_CARD or code == 0x80100069:
            return NoCard(msg)
        if code in _NO_READERS:
            return NoReader(msg)
        if code in _NO_SERVICE:
            return NoReader(msg)
        return CardFailure(detail=msg)

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        if not apdu.is_allowed(command):
            raise ApduNotAllowed(f"refused {apdu.describe(command)}")
        if self._card is None:
            self.connect()
        with self._lock:
            hr, response = self._scard.SCardTransmit(self._card, self._protocol, list(command))
        if hr != 0:
            code = _u32(hr)
            msg = self._scard.SCardGetErrorMessage(hr)
            if code in _REMOVED:
                raise CardRemoved(msg)
            if code in _NO_SERVICE:
                raise CardRemoved(msg)  # pcscd went away mid-way: same advice to the user
            raise CardFailure(detail=msg)
        if len(response) < 2:
            # No status word at all: the card stopped answering. vpcd (and some NFC
            # readers) report a card lifted mid-command this way instead of an error.
            if self._card_gone():
                raise CardRemoved("no answer; card no longer present")
            raise CardFailure(detail="short response")
        data = bytes(response[:-2])
        return data, (response[-2] << 8) | response[-1]

    def _card_gone(self, wait: float = 1.5) -> bool:
        # pcscd notices a removal on its next poll (~0.4 s): wait for it a little.
        deadline = time.monotonic() + wait
        while True:
            hr, *_ = self._scard.SCardStatus(self._card)
            if hr != 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def close(self) -> None:
        if self._card is not None:
            try:
                self._scard.SCardDisconnect(self._card, self._scard.SCARD_RESET_CARD)
            finally:
                self._card = None
        self._release_context()

    def _release_context(self) -> None:
        if self._ctx is not None:
            try:
                self._scard.SCardReleaseContext(self._ctx)
            finally:
                self._ctx = None
