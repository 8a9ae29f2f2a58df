"""Load generator for the card sign-in (bench/run.py starts it pinned to the load core).

wrk's Lua cannot make the card's RSA signature over the server's challenge, so this is
Python: one thread per connection, each with one keep-alive HTTP connection, and each
operation a fresh browser (its own cookies) signing in with the next card of its slice:

  GET /authorize -> 303 /login?txn   GET /login/card?txn (CSRF token, the first challenge)
  POST /login/card/verify (chain, CRL lookup, signature: its answer's redirect is the
  app's, with the code)               POST /token (code + PKCE) -> 200

Tokens are signed with ``cryptography`` directly, as the card and bridge would (RSASSA-
PKCS1-v1_5/SHA-256 over SHA-256(origin) || SHA-256(challenge)), independent of idp.jpki.

Input: a JSON file (--cards) written by bench/run.py:
  {"client_id", "client_secret", "redirect_uri", "origin",
   "cards": [{"certificate": base64 DER, "key": PEM}, ...]}
Output (--out): {"ops", "latencies_ms", "errors", "duration_us"}, as bench/lua/common.lua.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import sys
import threading
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class Unexpected(Exception):
    """An answer the flow did not expect: counted as an error by step and status."""

    def __init__(self, step: str, status: int, body: str) -> None:
        super().__init__(f"{step}:{status}")
        self.key = f"{step}:{status}"
        self.body = body


class Browser:
    """A cookie jar over one keep-alive connection (a fresh jar per operation)."""

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self.conn = conn
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                jar = SimpleCookie()
                jar.load(value)
                for key, morsel in jar.items():
                    self.cookies[key] = morsel.value
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class CardFlow:
    def __init__(self, config: dict) -> None:
        self.client_id = config["client_id"]
        self.redirect_uri = config["redirect_uri"]
        self.origin = config["origin"]
        raw = f"{config['client_id']}:{config['client_secret']}".encode()
        self.basic = "Basic " + base64.b64encode(raw).decode()
        self.cards = [(c["certificate"], self._key(c["key"])) for c in config["cards"]]

    @staticmethod
    def _key(pem: str) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    def sign(self, key: rsa.RSAPrivateKey, challenge: str) -> str:
        message = (hashlib.sha256(self.origin.encode()).digest()
                   + hashlib.sha256(challenge.encode()).digest())
        return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()

    def run_once(self, conn: http.client.HTTPConnection, card_index: int) -> None:
        certificate, key = self.cards[card_index]
        browser = Browser(conn)
        verifier, challenge = pkce_pair()
        status, headers, body = browser.request("GET", "/authorize?" + urlencode({
            "response_type": "code", "client_id": self.client_id,
            "redirect_uri": self.redirect_uri, "scope": "openid", "state": "bench",
            "code_challenge": challenge, "code_challenge_method": "S256"}))
        location = headers.get("location", "")
        txn = parse_qs(urlsplit(location).query).get("txn", [""])[0]
        if status != 303 or not txn:
            raise Unexpected("authorize", status, location + body.decode(errors="replace"))
        status, _, body = browser.request("GET", f"/login/card?txn={txn}")
        match = re.search(rb'data-csrf="([^"]+)"', body)
        # The page brings its first challenge, which the page's script uses on a first try.
        challenge = re.search(rb'data-challenge="([^"]+)"', body)
        if status != 200 or not match or not challenge:
            raise Unexpected("card-page", status, body.decode(errors="replace"))
        csrf = {"X-CSRFToken": match.group(1).decode()}
        token = {"format": "jpki-auth:1", "certificate": certificate, "algorithm": "RS256",
                 "signature": self.sign(key, challenge.group(1).decode()), "bridge": "bench/1"}
        status, _, body = browser.request(
            "POST", f"/login/card/verify?txn={txn}", json.dumps(token).encode(),
            {**csrf, "Content-Type": "application/json"})
        if status != 200:
            raise Unexpected("verify", status, body.decode(errors="replace"))
        # The verify answer sends the browser straight back to the app with its code.
        location = json.loads(body)["redirect"]
        code = parse_qs(urlsplit(location).query).get("code", [""])[0]
        if not location.startswith(self.redirect_uri) or not code:
            raise Unexpected("verify", status, location)
        status, _, body = browser.request("POST", "/token", urlencode({
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": self.redirect_uri, "code_verifier": verifier}).encode(),
            {"Authorization": self.basic,
             "Content-Type": "application/x-www-form-urlencoded"})
        if status != 200 or b'"id_token"' not in body:
            raise Unexpected("token", status, body.decode(errors="replace"))


def run(base_url: str, flow: CardFlow, seconds: float, connections: int,
        interval_ms: float = 0.0) -> dict:
    parts = urlsplit(base_url)
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    shown = [0]

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        # Connection ``slot`` uses cards slot, slot+N, ...: a card is never in two sign-ins
        # at once.
        mine = list(range(slot, len(flow.cards), connections)) or [slot % len(flow.cards)]
        i = 0
        # Staggered over one interval, so paced connections do not queue behind each other.
        next_start = time.monotonic() + slot / connections * interval_ms / 1000
        while True:
            if interval_ms:
                wait = next_start - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                next_start = max(next_start, time.monotonic()) + interval_ms / 1000
            started = time.monotonic()
            if started >= stop_at:
                break
            try:
                flow.run_once(conn, mine[i % len(mine)])
            except Unexpected as exc:
                with lock:
                    errors[exc.key] = errors.get(exc.key, 0) + 1
                    shown[0] += 1
                    if shown[0] <= 3:
                        print(f"card_load: unexpected {exc.key}: {exc.body[:300]}",
                              file=sys.stderr)
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors["socket"] = errors.get("socket", 0) + 1
                print(f"card_load: {type(exc).__name__}: {exc}", file=sys.stderr)
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            else:
                elapsed = (time.monotonic() - started) * 1000
                with lock:
                    latencies.append(elapsed)
            i += 1
        conn.close()

    begun = time.monotonic()
    threads = [threading.Thread(target=worker, args=(slot,), daemon=True)
               for slot in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    duration = time.monotonic() - begun
    return {"ops": len(latencies), "latencies_ms": latencies, "errors": errors,
            "duration_us": duration * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url")
    parser.add_argument("--cards", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    with open(args.cards, encoding="utf-8") as fh:
        flow = CardFlow(json.load(fh))
    result = run(args.base_url, flow, args.seconds, args.connections,
                 float(os.environ.get("BENCH_OP_INTERVAL_MS", "0")))
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
