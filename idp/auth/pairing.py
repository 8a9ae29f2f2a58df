"""Pairing codes: sign in on a tablet with the card on another computer (no Flask here).

The tablet's card page asks for a short code; a computer with a reader runs
``card-bridge pair CODE``, which fetches a challenge for that code, signs it with the card and
posts the token back; the tablet's page, polling, then continues its login.

Rules kept here:
- a code is 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L), shown as
  ``ABCD-EFGH``; typing is forgiving (lower case, dashes and spaces are accepted);
- it lives :data:`CODE_LIFETIME` seconds, is stored only as an HMAC (a copy of the store does
  not reveal live codes), and completes once: the bridge's POST *takes* the record, so two
  concurrent posts cannot both sign in;
- it is bound to the browser and login transaction that asked for it: only that browser can
  read its result, and the card's challenge is issued to the pairing itself;
- wrong codes are counted per IP address by :mod:`idp.signin.throttle` (reserved before the
  lookup, progressive and capped delays, :data:`~idp.signin.throttle.PAIR_POLICY`); a slowed
  address gets every bridge lookup refused, right or wrong, until its delay passes, but the
  tablet polling its own code from its own browser is never slowed (a school shares one
  address with whoever is guessing).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from idp.japan_time import japan_iso_of_epoch
from idp.signin.throttle import PAIRING, Attempt, Throttle
from idp.store.shortlived import ShortLivedStore

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
CODE_LIFETIME = 120
#: How long a finished or expired record is kept so that the tablet learns what happened.
RESULT_GRACE = 60
CREATE_LIMIT_PER_BROWSER = 10
CREATE_LIMIT_PER_IP = 300
CREATE_WINDOW = 600

WAITING, DONE, ERROR = "waiting", "done", "error"


class PairingRefused(Exception):
    """A pairing request that cannot go on; ``code`` is the JSON ``error`` value."""

    def __init__(self, code: str, retry_after: int = 0) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after = retry_after


def _now() -> float:
    return time.time()


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: object) -> str | None:
    """The code as stored (8 upper-case characters), or None when it cannot be a code."""
    if not isinstance(raw, str) or len(raw) > 32:
        return None
    code = raw.replace("-", "").replace(" ", "").upper()
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


def display_code(code: str) -> str:
    """``ABCDEFGH`` → ``ABCD-EFGH`` (easier to read aloud and to type)."""
    return f"{code[:4]}-{code[4:]}"


def record_key(secret: str, code: str) -> str:
    digest = hmac.new(secret.encode(), code.encode(), hashlib.sha256).hexdigest()
    return "cardpair:" + digest


@dataclass
class Pairings:
    """The pairing records of one provider (the short-lived store and the HMAC key)."""

    store: ShortLivedStore
    secret: str
    lifetime: int = CODE_LIFETIME
    throttle: Throttle | None = None

    def __post_init__(self) -> None:
        if self.throttle is None:  # the app passes its own (with the device-cookie key)
            self.throttle = Throttle(self.store)

    # ------------------------------------------------------------------ limits
    def creation_allowed(self, *, browser: str, ip: str) -> bool:
        per_browser = self.store.incr(f"cardpair-new:b:{browser}", CREATE_WINDOW)
        per_ip = self.store.incr(f"cardpair-new:ip:{ip}", CREATE_WINDOW)
        return per_browser <= CREATE_LIMIT_PER_BROWSER and per_ip <= CREATE_LIMIT_PER_IP

    def _attempt(self, ip: str) -> Attempt:
        """One throttled lookup from ``ip``, reserved before the code is looked at."""
        attempt = self.throttle.begin(None, ip, scope=PAIRING)
        if not attempt.allowed:
            raise PairingRefused("slow_down", attempt.wait)
        return attempt

    @staticmethod
    def _miss(attempt: Attempt) -> PairingRefused:
        """The refusal for a wrong code: "not found", or "slow down" once delays begin."""
        failure = attempt.failed()
        if failure.next_wait:
            return PairingRefused("slow_down", failure.next_wait)
        return PairingRefused("pairing_not_found")

    # ------------------------------------------------------------------ lifecycle
    def create(self, *, browser: str, txn_id: str | None, client_name: str,
               replaces: str | None = None, started: float | None = None,
               school_name: str | None = None) -> tuple[str, dict[str, Any]]:
        """A new code for this browser's login; an earlier code of the browser stops working.
        ``started``: when the login began (the bridge shows it), ``school_name`` if known."""
        if replaces:
            self.store.delete(replaces)
        record = {"id": secrets.token_urlsafe(16), "browser": browser, "txn": txn_id,
                  "client_name": client_name[:100], "expires_at": _now() + self.lifetime,
                  "state": WAITING, "started": float(started or _now()),
                  "school_name": (school_name or "")[:100] or None}
        for _ in range(5):
            code = new_code()
            if self.store.put_if_absent(record_key(self.secret, code), record,
                                        self.lifetime + RESULT_GRACE):
                return code, record
        raise RuntimeError("no free pairing code after 5 tries")  # 31**8 codes: never

    def key_of(self, code: str) -> str:
        return record_key(self.secret, code)

    def for_bridge(self, raw_code: object, *, ip: str) -> tuple[str, dict[str, Any]]:
        """The waiting pairing a bridge asks about. Counts and refuses wrong codes."""
        attempt = self._attempt(ip)
        code = normalize_code(raw_code)
        record = self.store.get(self.key_of(code)) if code else None
        if record is None:
            raise self._miss(attempt)
        attempt.succeeded()
        if record.get("state") != WAITING:
            raise PairingRefused("pairing_used")
        if _now() > float(record["expires_at"]):
            raise PairingRefused("pairing_expired")
        assert code is not None
        return code, record

    def claim(self, raw_code: object, *, ip: str) -> tuple[str, dict[str, Any]]:
        """Claim the waiting pairing for the bridge's token: one completion. The claim is
        a key of its own, taken atomically; the record stays where it is, still waiting,
        so the tablet polling it meanwhile sees "waiting", never "not found" (taking the
        record out while the card was checked made a poll in that moment give up)."""
        code, record = self.for_bridge(raw_code, ip=ip)
        if not self.store.put_if_absent(self._claim_key(code), {"at": _now()},
                                        self.lifetime + RESULT_GRACE):
            raise PairingRefused("pairing_used")
        return code, record

    def release(self, code: str) -> None:
        """Give a claim back when its check could not be made (the database or the store
        away): the bridge may try the same code again."""
        self.store.delete(self._claim_key(code))

    def _claim_key(self, code: str) -> str:
        return self.key_of(code) + ":claimed"

    def finish(self, code: str, record: dict[str, Any], *, account_id: str | None = None,
               error: str | None = None, pending_card: dict[str, Any] | None = None) -> None:
        """Record the outcome of the bridge's token for the tablet to pick up."""
        record = dict(record, state=ERROR if error else DONE, account_id=account_id,
                      error=error, pending_card=pending_card)
        self._keep(code, record)

    def _keep(self, code: str, record: dict[str, Any]) -> None:
        remaining = max(0.0, float(record["expires_at"]) - _now())
        self.store.put(self.key_of(code), record, int(remaining) + RESULT_GRACE)

    def for_browser(self, raw_code: object, *, browser: str, ip: str) -> dict[str, Any]:
        """The pairing as its own browser sees it; someone else's code is "not found".

        Its own browser is answered before any throttling: a tablet waiting for its result
        must not be stopped by a guesser behind the same school address."""
        code = normalize_code(raw_code)
        record = self.store.get(self.key_of(code)) if code else None
        if record is None or not hmac.compare_digest(str(record.get("browser")), browser):
            raise self._miss(self._attempt(ip))
        if record["state"] == WAITING and _now() > float(record["expires_at"]):
            return dict(record, state=ERROR, error="pairing_expired")
        return record

    def forget(self, raw_code: object) -> None:
        code = normalize_code(raw_code)
        if code:
            self.store.delete(self.key_of(code))
            self.store.delete(self._claim_key(code))

    def remaining(self, record: dict[str, Any]) -> int:
        return max(0, int(float(record["expires_at"]) - _now()))

    def bridge_facts(self, record: dict[str, Any], issuer: str) -> dict[str, Any]:
        """What the bridge shows before the PIN, so the person can tell whose login a code
        belongs to: the app, this provider's host, the school if known, when it started."""
        return {"client_name": record["client_name"], "provider_host": urlsplit(issuer).netloc,
                "school_name": record.get("school_name"),
                "started_at": japan_iso_of_epoch(float(record.get("started") or _now()))}


