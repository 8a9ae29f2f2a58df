"""The card sign-in service: the configured verifier, its CRL refresh, and one-time challenges.

Built once per app from the settings (:func:`build_card_service`). Nothing here imports
Flask: the views pass in the store, the browser id and the login transaction id, so every
rule can be tested by calling it.

Challenges are kept in the short-lived store under the browser and login transaction they
were issued to (``cardch:<browser>:<txn>``); issuing a new one replaces the old one, and
verifying takes it out (one use, even when the token turns out to be bad). The record lives a
little longer than the challenge so that a late token is told ``challenge_expired`` rather
than ``challenge_not_found``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from idp.jpki.challenge import new_challenge
from idp.jpki.errors import CardError
from idp.jpki.revocation import (
    CrlRevocation,
    CrlSourceStatus,
    OcspThenCrl,
    RevocationChecker,
    build_revocation_checker,
)
from idp.jpki.token import parse_token
from idp.jpki.trust import TrustAnchors
from idp.jpki.verifier import CardVerifier, VerifiedCard
from idp.metrics import CrlAge, count_revocation
from idp.settings import Settings
from idp.store.shortlived import ShortLivedStore

log = logging.getLogger(__name__)

#: How long after expiry a challenge record is still kept, to tell "expired" from "unknown".
EXPIRED_GRACE = 120
#: A running server checks this often whether ``idp jpki refresh-crl`` asked for a refresh.
REFRESH_POLL_SECONDS = 30
#: Store key through which ``idp jpki refresh-crl`` asks running servers to reload CRLs.
REFRESH_REQUEST_KEY = "jpki:crl-refresh-request"
NO_TXN = "-"
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def _now() -> float:
    """The clock of challenge expiry and certificate validity (tests move it)."""
    return time.time()


def now_utc() -> datetime:
    return datetime.fromtimestamp(_now(), UTC)


# ----------------------------------------------------------------------------- the verifier
def crl_checkers(checker: RevocationChecker | None) -> list[CrlRevocation]:
    """The CRL checkers inside a revocation checker (``crl`` or ``ocsp,crl`` modes)."""
    if isinstance(checker, CrlRevocation):
        return [checker]
    if isinstance(checker, OcspThenCrl):
        return crl_checkers(checker.crl) + crl_checkers(checker.ocsp)
    return []


class CrlRefresher:
    """Reloads the CRLs every ``interval`` seconds in a daemon thread of the serving process.

    Also reloads when ``idp jpki refresh-crl`` (another process) leaves a newer request time
    in the shared store. Started lazily by the first request of each process, so a server
    that forks its workers after building the app still gets one thread per worker.
    """

    def __init__(self, checkers: list[CrlRevocation], interval: int,
                 store: ShortLivedStore | None = None) -> None:
        self.checkers = checkers
        self.interval = max(1, interval)
        self.store = store
        self.last_refresh = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def refresh(self) -> list[CrlSourceStatus]:
        statuses = [s for checker in self.checkers for s in checker.refresh(now_utc())]
        self.last_refresh = time.time()
        for status in statuses:
            if not status.ok:
                log.warning("CRL source %s not usable: %s", status.source, status.message)
        return statuses

    def ensure_running(self) -> None:
        if not self.checkers or (self._pid == os.getpid() and self._thread is not None):
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="jpki-crl-refresh",
                                            daemon=True)
            self._pid = os.getpid()
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and self._pid == os.getpid():
            thread.join(timeout=5)

    def _requested_since_last_refresh(self) -> bool:
        if self.store is None:
            return False
        try:
            request = self.store.get(REFRESH_REQUEST_KEY)
        except Exception:  # noqa: BLE001 - the store being down must not kill the thread
            return False
        return bool(request) and float(request.get("at", 0)) > self.last_refresh

    def _run(self) -> None:
        while not self._stop.wait(min(self.interval, REFRESH_POLL_SECONDS)):
            due = time.time() - self.last_refresh >= self.interval
            if due or self._requested_since_last_refresh():
                try:
                    self.refresh()
                except Exception:  # noqa: BLE001 - keep refreshing; the CRLs fail closed
                    log.exception("CRL refresh failed")


@dataclass
class CardService:
    """What the card views need: the verifier (None when card sign-in is not configured)."""

    verifier: CardVerifier | None
    origin: str
    challenge_lifetime: int
    revocation_mode: str
    refresher: CrlRefresher | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return self.verifier is not None

    @property
    def revocation_disabled(self) -> bool:
        return self.enabled and self.revocation_mode == "none"

    def refresh_crls(self) -> list[CrlSourceStatus]:
        return self.refresher.refresh() if self.refresher else []

    @property
    def crl_sources(self) -> list[str]:
        """Every configured CRL source (empty: no CRL in the revocation mode)."""
        return [s for checker in (self.refresher.checkers if self.refresher else [])
                for s in checker.sources]

    def loaded_crls(self) -> list[CrlSourceStatus]:
        """The CRLs held now (readiness, and the CRL-age gauges at scrape time)."""
        return [s for checker in (self.refresher.checkers if self.refresher else [])
                for s in checker.loaded()]

    def crl_ages(self) -> list[CrlAge]:
        return [CrlAge(s.issuer_sha256, s.this_update, s.next_update)
                for s in self.loaded_crls()
                if s.issuer_sha256 and s.this_update and s.next_update]


def build_card_service(settings: Settings, store: ShortLivedStore | None = None,
                       **checker_options: Any) -> CardService:
    """Build the verifier from the settings; refuse to start on an unusable configuration.

    With no trust anchors or no revocation sources configured (allowed only in development
    and test) card sign-in is switched off and the card page says so. ``checker_options``
    (``fetch``, ``post``) let tests and the demo replace the network.
    """
    relaxed = settings.env in ("development", "test")
    service = CardService(verifier=None, origin=settings.issuer_origin,
                          challenge_lifetime=settings.card_challenge_lifetime,
                          revocation_mode=settings.jpki_revocation)
    if not settings.jpki_trust_anchors:
        if not relaxed:
            raise ValueError("IDP_JPKI_TRUST_ANCHORS is empty: card sign-in needs the J-LIS "
                             "user-authentication CA certificates (config/jpki/)")
        service.warnings.append("card sign-in is off: no IDP_JPKI_TRUST_ANCHORS configured")
        log.warning(service.warnings[-1])
        return service
    anchors = TrustAnchors.from_pem_files(resolve_path(p) for p in settings.jpki_trust_anchors)
    try:
        checker = build_revocation_checker(
            settings.jpki_revocation, settings.jpki_crl_sources,
            settings.jpki_ocsp_url or None, anchors, allow_none=relaxed, **checker_options)
    except ValueError as exc:
        if not relaxed:
            raise
        # A laptop without revocation sources: no card sign-in rather than no provider.
        service.warnings.append(f"card sign-in is off: {exc}")
        log.warning(service.warnings[-1])
        return service
    if isinstance(checker, OcspThenCrl):
        checker.observe = count_revocation  # each of its sources, OCSP and the fallback
    service.verifier = CardVerifier(anchors, checker, observe=count_revocation)
    if settings.jpki_revocation == "none":
        service.warnings.append(
            "IDP_JPKI_REVOCATION=none: revoked (lost or stolen) cards are NOT refused. "
            "Development only.")
        log.warning(service.warnings[-1])
    crls = crl_checkers(checker)
    if crls:
        service.refresher = CrlRefresher(crls, settings.jpki_crl_refresh_interval, store)
    return service


def resolve_path(name: str) -> Path:
    """A relative anchor path is looked up in the working directory, then in the project
    (the default ``config/jpki/...`` works whichever directory the server starts in)."""
    path = Path(name)
    if not path.is_absolute() and not path.exists() and (PROJECT_ROOT / path).exists():
        return PROJECT_ROOT / path
    return path


def request_crl_refresh(store: ShortLivedStore, interval: int) -> None:
    """Ask every running server sharing ``store`` to reload its CRLs at its next poll."""
    store.put(REFRESH_REQUEST_KEY, {"at": time.time()}, max(interval, REFRESH_POLL_SECONDS) * 2)


# ----------------------------------------------------------------------------- challenges
def _challenge_key(browser: str, txn_id: str | None) -> str:
    return f"cardch:{browser}:{txn_id or NO_TXN}"


# The card bridge ignores a longer name (card_bridge.origins.APP_NAME_MAX): cut here, with
# an ellipsis, so a long registered name is still shown, visibly shortened.
APP_NAME_MAX = 64


def app_display_name(name: str) -> str:
    """A client's name fit for the bridge's PIN window and terminal: no control or format
    characters (terminal escapes, the bidi overrides U+202A–U+202E and U+2066–U+2069, which
    could turn the origin shown beside it around), spaces collapsed, at most APP_NAME_MAX."""
    kept = " ".join("".join(" " if c.isspace() else c for c in name
                            if c.isspace() or unicodedata.category(c)[0] != "C").split())
    return kept if len(kept) <= APP_NAME_MAX else kept[:APP_NAME_MAX - 1] + "…"


def issue_challenge(store: ShortLivedStore, service: CardService, *, browser: str,
                    txn_id: str | None, app: str | None = None) -> dict[str, Any]:
    """A fresh challenge for this browser's login transaction; replaces any earlier one.

    ``app`` is the name of the client signed in to, passed on for the bridge to show (display
    only: it is not stored with the challenge and nothing signs it); left out without one.
    """
    challenge = new_challenge()
    store.put(_challenge_key(browser, txn_id),
              {"challenge": challenge, "expires_at": _now() + service.challenge_lifetime},
              service.challenge_lifetime + EXPIRED_GRACE)
    return _challenge_answer(service, challenge, service.challenge_lifetime, app)


# The least of a challenge's life a card page needs to hand it out: the page's script uses
# its challenge only for a try that starts with this much left, for the PIN (card.js).
PAGE_CHALLENGE_MIN_LEFT = 180


def page_challenge(store: ShortLivedStore, service: CardService, *, browser: str,
                   txn_id: str | None, app: str | None = None) -> dict[str, Any] | None:
    """The challenge a card page brings for its first try, or None (its script asks the
    endpoint when the try starts).

    Unlike the endpoint's, it never replaces a live challenge: a page load is a GET, which a
    prefetch, a second tab or another site's link makes without the child doing anything
    (the session cookie is SameSite=Lax), and replacing the challenge an open page is using
    would fail that page's try after the PIN. So the live challenge is handed out again
    while it has :data:`PAGE_CHALLENGE_MIN_LEFT` to go; a younger page makes a new one only
    when there is none, or it is past its life."""
    key, now = _challenge_key(browser, txn_id), _now()
    fresh = {"challenge": new_challenge(), "expires_at": now + service.challenge_lifetime}
    ttl = service.challenge_lifetime + EXPIRED_GRACE
    if store.put_if_absent(key, fresh, ttl):  # the usual case: one round trip
        return _challenge_answer(service, fresh["challenge"], service.challenge_lifetime, app)
    live = store.get(key)
    left = float(live.get("expires_at", 0)) - now if live else 0.0
    if live and isinstance(live.get("challenge"), str) and left > 0:
        if left < PAGE_CHALLENGE_MIN_LEFT:
            return None  # too little left to hand out, and maybe still in use
        return _challenge_answer(service, live["challenge"], int(left), app)
    store.put(key, fresh, ttl)
    return _challenge_answer(service, fresh["challenge"], service.challenge_lifetime, app)


def _challenge_answer(service: CardService, challenge: str, expires_in: int,
                      app: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {"challenge": challenge, "origin": service.origin,
                              "expires_in": expires_in}
    name = app_display_name(app or "")
    if name:
        answer["app"] = name
    return answer


def take_challenge(store: ShortLivedStore, *, browser: str, txn_id: str | None) -> str:
    """The challenge issued to this browser and transaction, used up by this call."""
    record = store.take(_challenge_key(browser, txn_id))
    if not record or not isinstance(record.get("challenge"), str):
        raise CardError("challenge_not_found",
                        "no challenge was issued to this session, or it was already used")
    if _now() > float(record.get("expires_at", 0)):
        raise CardError("challenge_expired", "the challenge is older than its lifetime")
    return record["challenge"]


def verify_token(store: ShortLivedStore, service: CardService, body: Any, *, browser: str,
                 txn_id: str | None) -> VerifiedCard:
    """Check a posted bridge token against this browser's challenge; raise CardError if bad.

    The token's shape is checked first, so junk does not use up the challenge; anything
    that parses spends it, whatever the outcome.
    """
    if service.verifier is None:
        raise CardError("revocation_unavailable", "card sign-in is not configured")
    token = parse_token(body)
    challenge = take_challenge(store, browser=browser, txn_id=txn_id)
    return service.verifier.verify(token, service.origin, challenge, now_utc())


def pending_card_record(card: VerifiedCard) -> dict[str, Any]:
    """What the session remembers about a verified card until the password links it."""
    return {"issuer": card.issuer, "serial": card.serial,
            "certificate_sha256": card.certificate_sha256,
            "not_after": card.not_after.isoformat(), "subject_cn": card.subject_cn,
            "at": time.time()}
