"""What the bridge did, said to the person at the PC: on its terminal, and on its local page
(http://127.0.0.1:<port>/). PIN accepted, wrong PIN with the tries left, which app was
signed in to. Never the PIN, the challenge or the certificate.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from card_bridge.errors import CardError, WrongPin
from card_bridge.origins import Site

KEEP = 20
log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Outcome:
    """What the bridge's window says when a sign-in ends: Japanese first, then English."""

    ja: str
    en: str
    bad: bool  # a wrong PIN or an error: shown in red


def outcome_of(event: Event) -> Outcome | None:
    """The window's words for an event that ends a card operation, or None.

    Waiting needs none (the PIN window is the question); a cancel was the person's own
    doing; 「暗証番号OK」 is said with the sign-in that follows it a moment later (one
    window, not two flashing by), or with the error when the signing then fails.
    """
    if event.kind == "signed_in":
        return Outcome(f"暗証番号OK。{event.ja}", f"PIN accepted. {event.en}", bad=False)
    if event.kind in ("wrong_pin", "error"):
        return Outcome(event.ja, event.en, bad=True)
    return None


def say_in_window(event: Event, tell: Callable[[str, str, bool], None] | None) -> None:
    """Hand an outcome to the PIN window's `tell` (TkPinPrompt.tell), when there is one."""
    outcome = outcome_of(event)
    if outcome is None or tell is None:
        return
    try:
        tell(outcome.ja, outcome.en, outcome.bad)
    except Exception:  # a window that cannot open must not fail the sign-in
        log.exception("could not show the outcome window")


class EventLog:
    """The last few events, newest last; each is printed once when it happens and handed to
    the listeners (the PIN window's outcome: a Windows build has no terminal to print on)."""

    def __init__(self, stream: TextIO | None = None, keep: int = KEEP) -> None:
        self.stream = stream
        self._events: deque[Event] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self.listeners: list[Callable[[Event], None]] = []

    def add(self, kind: str, ja: str, en: str) -> Event:
        event = Event(time.time(), kind, ja, en)
        with self._lock:
            self._events.append(event)
        stream = self.stream or sys.stdout
        print(f"[{event.clock}] {ja} / {en}", file=stream, flush=True)
        for listener in list(self.listeners):
            listener(event)
        return event

    def recent(self) -> list[Event]:
        with self._lock:
            return list(reversed(self._events))

    # -- the sentences ------------------------------------------------------------------
    def waiting_for_pin(self, site: Site | str) -> None:
        site = Site.of(site)
        self.add("waiting", site.ja_then("のために暗証番号を待っています（カードアプリのまど）"),
                 f"Waiting for the PIN for {site.en} (in the card bridge's window)")

    def pin_accepted(self) -> None:
        self.add("pin_ok", "暗証番号OK", "PIN accepted")

    def signed(self, site: Site | str) -> None:
        site = Site.of(site)
        self.add("signed_in", site.ja_then("にサインインのしるしをわたしました"),
                 f"Signed in to {site.en}: the card's signature was handed over")

    def signed_in(self, site: Site | str) -> None:
        site = Site.of(site)
        self.add("signed_in", site.ja_then("にサインインしました"), f"Signed in to {site.en}")

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
