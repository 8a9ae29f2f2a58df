"""Progressive delays for guessing attacks, kept in the short-lived store (no Flask here).

A delay (not a lock-out) so an attacker who knows a child's login id can slow that child's
sign-in by minutes at most, never lock them out for a day. The delay doubles with each
failure past a free allowance and is capped. The rules, in one place:

- **Reserve, then check.** :meth:`Throttle.begin` counts the attempt *before* the password
  (or TOTP code, or pairing code) is checked, with one atomic store operation per counter;
  :meth:`Attempt.failed` keeps the reservation, :meth:`Attempt.succeeded` gives it back.
  Twenty guesses sent at the same moment therefore see counts 0..19, not twenty times 0.
  A refused attempt gives its reservation back at once and does not move the failure time,
  so hammering a refused account never extends its delay.
- **Device cookies** (OWASP "device cookies"): a browser that signed in to an account before
  holds a signed cookie naming that account (as a keyed digest, not the login id). With it,
  the browser has its own allowance for the account, so wrong passwords sent from elsewhere
  do not slow the child's own browser. A forged cookie, or one for another account, is
  ignored.
- **Per-address limits** slow guessing at unknown accounts from one address, and at accounts
  that already have failures of their own. They never refuse a correct password for an
  account without failures: a whole school shares one NAT address. A wrong password for such
  an account is answered with the same "wait" as an unknown one, so the answer does not tell
  which login ids exist.
- **Sustained guessing** at one account (:data:`GUESSING_FAILURES` failures within
  :data:`GUESSING_WINDOW`, from anywhere) raises a flag once per window, which the caller
  audits; admins see it for :data:`FLAG_TTL`. Delays stay capped whatever happens.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from idp.audit import audit
from idp.metrics import count_throttle_hit
from idp.store.shortlived import ShortLivedStore


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int
    max_delay: int  # seconds
    window: int  # seconds a failure is remembered


ACCOUNT_POLICY = ThrottlePolicy(free_failures=5, max_delay=300, window=3600)
#: A browser that signed in to the account before: an allowance of its own.
DEVICE_POLICY = ThrottlePolicy(free_failures=5, max_delay=300, window=3600)
#: Capped at 5 minutes like the others: the address is a whole school's.
IP_POLICY = ThrottlePolicy(free_failures=30, max_delay=300, window=3600)
#: Pairing-code lookups by a bridge, per address (31**8 codes leave nothing to guess).
PAIR_POLICY = ThrottlePolicy(free_failures=30, max_delay=300, window=600)

GUESSING_FAILURES = 20
GUESSING_WINDOW = 3600
FLAG_TTL = 24 * 3600

DEVICE_COOKIE = "mynagate_device"
DEVICE_MAX_AGE = 180 * 24 * 3600
DEVICE_MAX_ACCOUNTS = 40  # a class sharing one PC
_DEVICE_SALT = "mynagate.device-cookie"


@dataclass(frozen=True)
class Scope:
    """Which counters an attempt uses: the per-account policy and the per-address one."""

    account: ThrottlePolicy
    ip: ThrottlePolicy
    ip_prefix: str


LOGIN = Scope(ACCOUNT_POLICY, IP_POLICY, "thr:ip:")
#: The ``kind`` label of ``mynagate_throttle_hits_total`` for each counter's key prefix.
_COUNTER_KINDS = {"acct": "account", "dev": "device", "addr": "known_address",
                  "ip": "address", "pair-ip": "pairing_address"}
PAIRING = Scope(ACCOUNT_POLICY, PAIR_POLICY, "thr:pair-ip:")


def delay_for(failures: int, policy: ThrottlePolicy) -> int:
    if failures < policy.free_failures:
        return 0
    return min(policy.max_delay, 2 ** min(30, failures - policy.free_failures + 1))


def _wait(before: int, last: float, policy: ThrottlePolicy, now: float) -> int:
    """Seconds still to wait after ``before`` failures, the latest at ``last``."""
    delay = delay_for(before, policy)
    if not delay:
        return 0
    # No failure time yet but a full count: the others are attempts still in flight.
    base = last or now
    return max(0, math.ceil(base + delay - now))


@dataclass
class Failure:
    """What a failed attempt means for the answer."""

    wait: int  # > 0: answer "wait this long" (the address is slowed), not "wrong"
    next_wait: int  # the wait the next attempt will meet
    failures: int  # failures at this account in the guessing window
    guessing: bool  # sustained guessing was raised just now: audit it


@dataclass
class Attempt:
    """One reserved attempt; settle it with :meth:`failed` or :meth:`succeeded`.

    ``guessing`` turns true on the one attempt (refused or failed) that raised the
    sustained-guessing flag; :func:`audit_guessing` records it."""

    throttle: Throttle
    account_key: str | None
    account_id: str | None
    wait: int
    own: tuple[str, ThrottlePolicy] | None = None
    reserved: list[tuple[str, ThrottlePolicy]] = field(default_factory=list)
    hidden_ip_wait: int = 0
    failures: int = 0
    guessing: bool = False
    ip: str | None = None

    @property
    def allowed(self) -> bool:
        return self.wait == 0

    def failed(self) -> Failure:
        t = self.throttle
        now = t._clock()
        next_wait = 0
        for key, policy in self.reserved:
            n, _ = t._store.tally(key, 0, policy.window, stamp=now)
            next_wait = max(next_wait, delay_for(n, policy))
        self.reserved = []
        t._count_guess(self, now)
        return Failure(self.hidden_ip_wait, next_wait, self.failures, self.guessing)

    def succeeded(self, cookie: str | None = None) -> str | None:
        """Give the reservations back, clear this account's own counter; returns the device
        cookie to set (None without an account or a secret)."""
        t = self.throttle
        for key, policy in self.reserved:
            if self.own and key == self.own[0]:
                t._store.delete(key)
            else:
                t._store.tally(key, -1, policy.window)
        self.reserved = []
        if self.account_key and self.ip:
            # This address saw the right password: it keeps an allowance of its own.
            t._store.add_member(t._known_key(self.account_key), self.ip, DEVICE_MAX_AGE)
        return t.device_cookie(cookie, self.account_key) if self.account_key else None


class Throttle:
    def __init__(self, store: ShortLivedStore, clock: Callable[[], float] = time.time,
                 secret: str | None = None) -> None:
        self._store = store
        self._clock = clock
        self._signer = URLSafeTimedSerializer(secret, salt=_DEVICE_SALT) if secret else None
        self._digest_key = (secret or "").encode()

    # ------------------------------------------------------------------ attempts
    def begin(self, account_key: str | None, ip: str | None, *,
              account_id: str | None = None, device: str | None = None,
              scope: Scope = LOGIN) -> Attempt:
        """Reserve an attempt at ``account_key`` (None: no account, e.g. a pairing code)
        from ``ip``. ``account_id``: the account, when it exists; ``device``: the browser's
        device cookie. Refused attempts (``wait`` > 0) hold no reservation."""
        now = self._clock()
        attempt = Attempt(self, account_key, account_id, 0, ip=ip)
        known = account_id is not None
        own_before = 0
        hit = ""  # which counter made the attempt wait (a metric label)
        if account_key:
            attempt.own = self._own_counter(account_key, ip, device, scope)
            key, policy = attempt.own
            n, last = self._store.tally(key, 1, policy.window)
            attempt.reserved.append(attempt.own)
            own_before = n - 1
            attempt.wait = _wait(own_before, last, policy, now)
            hit = _COUNTER_KINDS[key.split(":", 2)[1]] if attempt.wait else ""
        if ip:
            key = scope.ip_prefix + ip
            n, last = self._store.tally(key, 1, scope.ip.window)
            attempt.reserved.append((key, scope.ip))
            ip_wait = _wait(n - 1, last, scope.ip, now)
            if account_key is None or not known or own_before > 0:
                if ip_wait > attempt.wait:
                    hit = _COUNTER_KINDS[scope.ip_prefix.split(":", 2)[1]]
                attempt.wait = max(attempt.wait, ip_wait)
            else:
                attempt.hidden_ip_wait = ip_wait
        if attempt.wait:
            count_throttle_hit(hit)
            for key, policy in attempt.reserved:
                self._store.tally(key, -1, policy.window)
            attempt.reserved = []
            self._count_guess(attempt, now)  # hammering a slowed account is guessing too
        return attempt

    def _own_counter(self, account_key: str, ip: str | None, device: str | None,
                     scope: Scope) -> tuple[str, ThrottlePolicy]:
        """Whose failures slow this attempt: a browser that signed in to the account before
        (device cookie) or an address that did (the school's, the family's) has its own
        allowance, so guesses sent from elsewhere never keep the child out; everyone else
        shares the account's counter."""
        digest = self._digest(account_key)
        device_id = self.device_allowance(device, account_key)
        if device_id:
            return f"thr:dev:{device_id}:{digest}", DEVICE_POLICY
        if ip and ip in self._store.members(self._known_key(account_key)):
            return f"thr:addr:{digest}:{ip}", DEVICE_POLICY
        return f"thr:acct:{account_key}", scope.account

    def _known_key(self, account_key: str) -> str:
        return f"thr:known:{self._digest(account_key)}"

    def _count_guess(self, attempt: Attempt, now: float) -> None:
        """Count a failed or refused attempt at an account, from anywhere; raise the flag
        once per window (not per guess)."""
        if not attempt.account_key:
            return
        key = attempt.account_key
        attempt.failures, _ = self._store.tally(f"thr:sus:{key}", 1, GUESSING_WINDOW)
        if attempt.failures < GUESSING_FAILURES or not attempt.account_id:
            return
        if self._store.put_if_absent(f"thr:sus-raised:{key}", {"at": now}, GUESSING_WINDOW):
            self._store.put(f"thr:flag:{attempt.account_id}",
                            {"since": now, "failures": attempt.failures}, FLAG_TTL)
            attempt.guessing = True

    def guessing_flag(self, account_id: str) -> dict[str, Any] | None:
        """The admin-visible flag, ``{"since": ISO UTC time, "failures": n}``, or None."""
        flag = self._store.get(f"thr:flag:{account_id}")
        if not flag:
            return None
        since = dt.datetime.fromtimestamp(float(flag["since"]), dt.UTC)
        return {"since": since.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "failures": int(flag["failures"])}

    # ------------------------------------------------------------------ device cookies
    def _digest(self, account_key: str) -> str:
        # The cookie names the account without showing its login id to whoever reads it.
        mac = hmac.new(self._digest_key, b"device:" + account_key.encode(), hashlib.sha256)
        return mac.hexdigest()[:24]

    def _read_cookie(self, cookie: str | None) -> dict[str, Any] | None:
        if not self._signer or not cookie or len(cookie) > 4000:
            return None
        try:
            data = self._signer.loads(cookie, max_age=DEVICE_MAX_AGE)
        except BadData:
            return None
        ok = isinstance(data, dict) and isinstance(data.get("d"), str) and \
            isinstance(data.get("a"), list)
        return data if ok else None

    def device_allowance(self, cookie: str | None, account_key: str) -> str | None:
        """The device id of a valid cookie that names ``account_key``, else None."""
        data = self._read_cookie(cookie)
        if data is None or self._digest(account_key) not in data["a"]:
            return None
        return data["d"]

    def device_cookie(self, cookie: str | None, account_key: str) -> str | None:
        """The cookie value after a sign-in to ``account_key`` in this browser."""
        if not self._signer:
            return None
        data = self._read_cookie(cookie) or {"d": secrets.token_urlsafe(12), "a": []}
        digest = self._digest(account_key)
        names = [digest] + [a for a in data["a"] if a != digest]
        return self._signer.dumps({"d": data["d"], "a": names[:DEVICE_MAX_ACCOUNTS]})


def audit_guessing(db: Session, attempt: Attempt, *, ip: str | None, **details: Any) -> None:
    """Record ``login.guessing`` when this attempt raised the sustained-guessing flag."""
    if attempt.guessing:
        audit(db, "login.guessing", outcome="flagged", account_id=attempt.account_id, ip=ip,
              attempts=attempt.failures, **details)
