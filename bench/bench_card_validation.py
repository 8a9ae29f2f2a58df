"""Benchmark: card validations per second per core in a warm process.

Measures ``CardVerifier.verify`` = parse DER + issuer-by-signature (RSA verify) + validity
and profile checks + challenge signature (RSA verify) + revocation lookup, for
  1. CRL revocation (set lookup, CRL with 100 000 revoked serials), and
  2. OCSP with a warm cache (the responder is only asked once per card).
Target: >= 1000 validations/s/core.  Run: ``.venv/bin/python bench/bench_card_validation.py``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from idp.jpki import (
    CardVerifier,
    CrlRevocation,
    OcspRevocation,
    TrustAnchors,
    new_challenge,
    parse_token,
)
from idp.jpki.testing.ocsp_responder import OcspResponderServer
from idp.jpki.testing.testpki import (
    create_root,
    issue_ocsp_responder_cert,
    issue_user_cert,
    make_crl,
)

ORIGIN = "https://idp.example.ed.jp"


def run(verifier: CardVerifier, tokens, challenges, now: datetime, seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    k = len(tokens)
    while True:
        for _ in range(100):
            i = n % k
            verifier.verify(tokens[i], ORIGIN, challenges[i], now)
            n += 1
        elapsed = time.perf_counter() - start
        if time.perf_counter() >= deadline:
            return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--cards", type=int, default=8)
    parser.add_argument("--revoked", type=int, default=100_000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):  # one core, as the metric says
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    now = datetime.now(UTC)
    root = create_root(not_before=now - timedelta(days=1))
    cards = [issue_user_cert(root, not_before=now - timedelta(days=1)) for _ in range(args.cards)]
    anchors = TrustAnchors([root.certificate])
    challenges = [new_challenge() for _ in cards]
    tokens = [parse_token(c.token(ORIGIN, ch)) for c, ch in zip(cards, challenges, strict=True)]

    with tempfile.TemporaryDirectory() as tmp:
        crl_path = Path(tmp) / "crl.der"
        revoked = range(10**6, 10**6 + args.revoked)  # not our cards' serials
        t0 = time.perf_counter()
        crl_path.write_bytes(make_crl(root, revoked, now - timedelta(hours=1), now + timedelta(1)))
        t1 = time.perf_counter()
        crl = CrlRevocation([str(crl_path)], anchors=anchors)
        t2 = time.perf_counter()
        print(
            f"CRL: {args.revoked} revoked serials, {crl_path.stat().st_size} bytes; "
            f"signing {t1 - t0:.2f}s, loading {t2 - t1:.2f}s"
        )
        rate = run(CardVerifier(anchors, crl), tokens, challenges, now, args.seconds)
        print(f"CRL revocation   validations/s/core: {rate:.0f}")

    responder = issue_ocsp_responder_cert(root, not_before=now - timedelta(days=1))
    with OcspResponderServer(
        root.certificate, responder_cert=responder.certificate, responder_key=responder.private_key
    ) as server:
        ocsp_checker = OcspRevocation(server.url)
        verifier = CardVerifier(anchors, ocsp_checker)
        t0 = time.perf_counter()
        for token, ch in zip(tokens, challenges, strict=True):
            verifier.verify(token, ORIGIN, ch, now)  # fills the cache: one round trip per card
        first = (time.perf_counter() - t0) / len(tokens)
        print(f"OCSP uncached (local responder, incl. signing): {first * 1000:.1f} ms/validation")
        rate_ocsp = run(verifier, tokens, challenges, now, args.seconds)
        print(f"OCSP cached      validations/s/core: {rate_ocsp:.0f}")
        print(f"(responder requests: {server.request_count})")
    print(f"validations/s/core: {rate:.0f}")


if __name__ == "__main__":
    main()
