"""Connect a `VirtualJpkiCard` to the vsmartcard vpcd driver inside pcscd.

vpcd listens (TCP, default 127.0.0.1:35963 = reader "Virtual PCD 00 00") and the virtual
card connects to it. Every message is a 2-byte big-endian length and a payload; a 1-byte
payload is a control code (0 power off, 1 power on, 2 reset, 4 "send your ATR"), anything
longer is a command APDU answered with the response APDU. Control codes other than 4 get
no answer.

vpcd treats "connected and answering the ATR request" as "card present", so removing the
card is closing the socket and inserting it is connecting again.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time

from card_bridge.sim import DEFAULT_VPCD_PORT
from card_bridge.sim.model import VirtualJpkiCard

CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4

log = logging.getLogger(__name__)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class VpcdCardClient:
    def __init__(
        self, card: VirtualJpkiCard, host: str = "127.0.0.1", port: int = DEFAULT_VPCD_PORT
    ) -> None:
        self.card = card
        self.host = host
        self.port = port
        self._inserted = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._sock: socket.socket | None = None
        self._sock_lock = threading.Lock()
        self._drop_after: int | None = None
        self._thread: threading.Thread | None = None

    # -- control from tests / the CLI ------------------------------------------------
    def start(self) -> VpcdCardClient:
        self._inserted.set()
        self._thread = threading.Thread(target=self._run, name="vpcd-card", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._inserted.set()
        self._run()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def remove(self) -> None:
        """Take the card off the reader."""
        self._inserted.clear()
        self._drop()

    def insert(self) -> None:
        """Put the card back (a fresh power-up: no PIN state survives)."""
        self.card.power_cycle()
        self._inserted.set()

    def remove_after(self, n_apdus: int) -> None:
        """Answer `n_apdus` more APDUs, then vanish while the next one is in flight."""
        self._drop_after = n_apdus

    def stop(self) -> None:
        self._stop.set()
        self._inserted.set()  # wake the loop so it can see _stop
        self._drop()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _drop(self) -> None:
        with self._sock_lock:
            sock, self._sock = self._sock, None
        self._connected.clear()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.card.power_cycle()

    # -- the loop --------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._inserted.wait()
            if self._stop.is_set():
                break
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2)
            except OSError:
                time.sleep(0.2)  # pcscd not up yet, or restarting: keep trying
                continue
            sock.settimeout(None)
            with self._sock_lock:
                if not self._inserted.is_set() or self._stop.is_set():
                    sock.close()
                    continue
                self._sock = sock
            self._connected.set()
            log.info("virtual card inserted into vpcd at %s:%d", self.host, self.port)
            try:
                self._serve(sock)
            except OSError:
                pass
            finally:
                if self._sock is sock:
                    self._drop()
            if self._inserted.is_set() and not self._stop.is_set():
                time.sleep(0.2)  # vpcd closed us (pcscd restart): reconnect shortly

    def _serve(self, sock: socket.socket) -> None:
        while True:
            header = _recv_exact(sock, 2)
            if header is None:
                return
            (length,) = struct.unpack(">H", header)
            payload = _recv_exact(sock, length)
            if payload is None:
                return
            if length == 1:
                ctrl = payload[0]
                if ctrl == CTRL_ATR:
                    self._send(sock, self.card.atr)
                elif ctrl in (CTRL_OFF, CTRL_ON, CTRL_RESET):
                    self.card.power_cycle()
                continue
            if self._drop_after is not None:
                if self._drop_after <= 0:
                    self._drop_after = None
                    self.card.received.append(payload)  # it did arrive, then the card left
                    self.remove()
                    return
                self._drop_after -= 1
            self._send(sock, self.card.process(payload))

    @staticmethod
    def _send(sock: socket.socket, data: bytes) -> None:
        sock.sendall(struct.pack(">H", len(data)) + data)
