"""Fetch a client's ``jwks_uri`` (for private_key_jwt), cached briefly."""

from __future__ import annotations

import threading
import time

import requests

_cache: dict[str, tuple[float, dict]] = {}
_lock = threading.Lock()
TTL = 300


def fetch_client_jwks(uri: str) -> dict:
    now = time.monotonic()
    with _lock:
        hit = _cache.get(uri)
        if hit and hit[0] > now:
            return hit[1]
    try:
        resp = requests.get(uri, timeout=5, allow_redirects=False)
        data = resp.json() if resp.status_code == 200 and len(resp.content) < 256 * 1024 else {}
    except (requests.RequestException, ValueError):
        data = {}
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        data = {"keys": []}
    with _lock:
        _cache[uri] = (now + TTL, data)
    return data
