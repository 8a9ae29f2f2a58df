"""Shared test PKI for the JPKI core tests.

RSA key generation is the slow part (~50-100 ms per 2048-bit key), so keys and the main
hierarchy are made once per session; tests that need odd certificates issue them from the
session root with pre-generated keys from ``key_pool``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from idp.jpki import CardVerifier, NoRevocation, TrustAnchors
from idp.jpki.testing.ocsp_responder import OcspResponderServer
from idp.jpki.testing.testpki import (
    TestCA,
    TestCard,
    TestResponder,
    create_root,
    generate_rsa_key,
    issue_ocsp_responder_cert,
    issue_user_cert,
)

ORIGIN = "https://idp.example.ed.jp"
CHALLENGE = "q6Zb8wY3M0l4gJ8Kx0v8b2uR3cQfN1sTzA9eHk5pLdU"


class KeyPool:
    """Hands out distinct pre-generated keys; generates more if a session needs them."""

    def __init__(self, size: int) -> None:
        self._keys = [generate_rsa_key(2048) for _ in range(size)]
        self._next = itertools.count()

    def get(self):
        i = next(self._next)
        if i < len(self._keys):
            return self._keys[i]
        return generate_rsa_key(2048)


@pytest.fixture(scope="session")
def key_pool() -> KeyPool:
    return KeyPool(6)


@pytest.fixture(scope="session")
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="session")
def root(key_pool: KeyPool, now: datetime) -> TestCA:
    return create_root(key=key_pool.get(), not_before=now - timedelta(days=30))


@pytest.fixture(scope="session")
def other_root(key_pool: KeyPool, now: datetime) -> TestCA:
    """Same DN as ``root``, different key: an impostor (or another CA generation)."""
    return create_root(key=key_pool.get(), not_before=now - timedelta(days=30))


@pytest.fixture(scope="session")
def card(root: TestCA, key_pool: KeyPool, now: datetime) -> TestCard:
    return issue_user_cert(root, key=key_pool.get(), not_before=now - timedelta(days=1))


@pytest.fixture(scope="session")
def card2(root: TestCA, key_pool: KeyPool, now: datetime) -> TestCard:
    return issue_user_cert(root, key=key_pool.get(), not_before=now - timedelta(days=1))


@pytest.fixture(scope="session")
def responder(root: TestCA, key_pool: KeyPool, now: datetime) -> TestResponder:
    return issue_ocsp_responder_cert(root, key=key_pool.get(), not_before=now - timedelta(days=1))


@pytest.fixture(scope="session")
def anchors(root: TestCA) -> TrustAnchors:
    return TrustAnchors([root.certificate])


@pytest.fixture(scope="session")
def verifier_no_revocation(anchors: TrustAnchors) -> CardVerifier:
    return CardVerifier(anchors, NoRevocation())


@pytest.fixture
def ocsp_server(
    root: TestCA, responder: TestResponder, now: datetime
) -> Iterator[OcspResponderServer]:
    """Responder whose clock is the session's ``now``, so tests are independent of timing."""
    server = OcspResponderServer(
        root.certificate,
        responder_cert=responder.certificate,
        responder_key=responder.private_key,
        clock=lambda: now,
    )
    server.start()
    yield server
    server.stop()
