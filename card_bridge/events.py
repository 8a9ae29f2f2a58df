"""What the bridge did, said to the person at the PC: on its terminal, and on its local page
(http://127.0.0.1:<port>/). PIN accepted, wrong PIN with the tries left, which app was
signed in to. Never the PIN, the challenge or the certificate.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TextIO

from card_bridge.errors import CardError, WrongPin

KEEP = 20


@dataclass(frozen=True)
class Event:
    at: float  # time.time()
    kind: str  # "pin_ok", "wrong_pin", "signed_in", "error", "cancelled", "waiting"
    ja: str
    en: str

    @property
    def clock(self) -> str:
        # The PC's own clock and zone: what the person beside it reads on the wall.
        return time.strftime("%H:%M:%S", time.localtime(self.at))


class EventLog:
    """The last few events, newest last; each is printed once when it happens."""

    def __init__(self, stream: TextIO | None = None, keep: int = KEEP) -> None:
        self.stream = stream
        self._events: deque[Event] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, kind: str, ja: str, en: str) -> Event:
        event = Event(time.time(), kind, ja, en)
        with self._lock:
            self._events.append(event)
        stream = self.stream or sys.stdout
        print(f"[{event.clock}] {ja} / {en}", file=stream, flush=True)
        return event

    def recent(self) -> list[Event]:
        with self._lock:
            return list(reversed(self._events))

    # -- the sentences ------------------------------------------------------------------
    def waiting_for_pin(self, app: str) -> None:
        self.add("waiting", f"{app} のために暗証番号を待っています（カードアプリのまど）",
                 f"Waiting for the PIN for {app} (in the card bridge's window)")

    def pin_accepted(self) -> None:
        self.add("pin_ok", "暗証番号OK", "PIN accepted")

    def signed(self, app: str) -> None:
        self.add("signed_in", f"{app} にサインインのしるしをわたしました",
                 f"Signed in to {app}: the card's signature was handed over")

    def signed_in(self, app: str) -> None:
        self.add("signed_in", f"{app} にサインインしました", f"Signed in to {app}")

    def failed(self, exc: CardError) -> None:
        if isinstance(exc, WrongPin):
            self.add("wrong_pin", f"暗証番号がちがいます。のこり {exc.tries_left} 回",
                     f"Wrong PIN: {exc.tries_left} tries left")
            return
        kind = "cancelled" if exc.code == "cancelled" else "error"
        self.add(kind, exc.message_ja, exc.message_en)

    def pairing_failed(self, reason: str) -> None:
        self.add("error", f"タブレットの番号でサインインできませんでした: {reason}",
                 f"Pairing did not work: {reason}")
