"""Fetch a client's ``jwks_uri`` (for private_key_jwt) through the guarded fetcher, cached
briefly (failures too: a dead or refused URL is not retried on every token request)."""

from __future__ import annotations

import threading
import time

from idp import outbound

_cache: dict[tuple[str, outbound.OutboundPolicy], tuple[float, dict]] = {}
_lock = threading.Lock()
TTL = 300


def fetch_client_jwks(uri: str, policy: outbound.OutboundPolicy) -> dict:
    now = time.monotonic()
    with _lock:
        hit = _cache.get((uri, policy))
        if hit and hit[0] > now:
            return hit[1]
    try:
        data = outbound.fetch_json(uri, policy)
    except outbound.OutboundError:
        data = {}
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        data = {"keys": []}
    with _lock:
        # Keyed by the policy too: a changed allow-list takes effect at once.
        _cache[(uri, policy)] = (now + TTL, data)
    return data
