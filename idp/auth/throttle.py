"""Progressive delays for guessing attacks, per account and per IP, kept in the short-lived
store.

A delay (not a lock-out) so an attacker who knows a child's login id can slow that child's
sign-in by minutes at most, never lock them out for a day. The delay doubles with each
failure past a free allowance and is capped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from idp.store.shortlived import ShortLivedStore


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int
    max_delay: int  # seconds
    window: int  # seconds a failure is remembered


ACCOUNT_POLICY = ThrottlePolicy(free_failures=5, max_delay=300, window=3600)
IP_POLICY = ThrottlePolicy(free_failures=30, max_delay=600, window=3600)


def delay_for(failures: int, policy: ThrottlePolicy) -> int:
    if failures < policy.free_failures:
        return 0
    return min(policy.max_delay, 2 ** (failures - policy.free_failures + 1))


class Throttle:
    def __init__(self, store: ShortLivedStore, clock=time.time) -> None:
        self._store = store
        self._clock = clock

    def _keys(self, account_key: str | None, ip: str | None):
        if account_key:
            yield f"thr:acct:{account_key}", ACCOUNT_POLICY
        if ip:
            yield f"thr:ip:{ip}", IP_POLICY

    def wait_seconds(self, account_key: str | None, ip: str | None) -> int:
        """Seconds until another attempt is allowed (0 = now)."""
        now = self._clock()
        wait = 0
        for key, _policy in self._keys(account_key, ip):
            state = self._store.get(key)
            if state:
                wait = max(wait, int(state.get("next", 0) - now + 0.999))
        return max(0, wait)

    def failure(self, account_key: str | None, ip: str | None) -> None:
        now = self._clock()
        for key, policy in self._keys(account_key, ip):
            state = self._store.get(key) or {"n": 0, "next": 0}
            state["n"] = int(state["n"]) + 1
            state["next"] = now + delay_for(state["n"], policy)
            self._store.put(key, state, policy.window)

    def success(self, account_key: str | None) -> None:
        if account_key:
            self._store.delete(f"thr:acct:{account_key}")
