"""Card sign-in through the provider: apps configured with a test PKI, and a card browser.

Tokens are made here with ``cryptography`` directly (not with the bridge's code): the test
plays the bridge and the card. Keys are the slow part, so a few are generated per session
and shared by the certificates the tests mint.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.card.helpers import Card, CardBrowser
from tests.conftest import provider_app


class KeyPool:
    def __init__(self, keys: list[rsa.RSAPrivateKey]) -> None:
        self.keys = keys
        self._next = itertools.cycle(range(len(keys)))

    def get(self) -> rsa.RSAPrivateKey:
        return self.keys[next(self._next)]


@pytest.fixture(scope="session")
def card_keys() -> KeyPool:
    from idp.jpki.testing.testpki import generate_rsa_key

    return KeyPool([generate_rsa_key(2048) for _ in range(3)])


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory):
    """The test PKI on disk, written by the same tool as ``idp jpki test-pki``."""
    from idp.jpki.testing.pki_dir import load_test_pki, write_test_pki

    directory = tmp_path_factory.mktemp("card-pki")
    write_test_pki(directory, n_cards=1)
    return load_test_pki(directory)


@pytest.fixture
def new_card(test_pki, card_keys):
    """Mint a fresh card certificate under the test root (unique serial, shared key)."""
    from idp.jpki.testing.testpki import issue_user_cert

    def make(**options) -> Card:
        key = options.pop("key", None)
        if key is None and options.get("key_size", 2048) == 2048:
            key = card_keys.get()
        issued = issue_user_cert(test_pki.root, key=key, **options)
        return Card(issued.certificate, issued.private_key)

    return make


@pytest.fixture(scope="session")
def crl_app(settings_overrides, test_pki) -> Iterator:
    with provider_app({**settings_overrides, "jpki_trust_anchors": [str(test_pki.root_path)],
                       "jpki_revocation": "crl", "jpki_crl_sources": [str(test_pki.crl_path)]}
                      ) as application:
        yield application


@pytest.fixture(scope="session")
def ocsp_responder(test_pki):
    from idp.jpki.testing.ocsp_responder import OcspResponderServer

    server = OcspResponderServer(test_pki.root.certificate,
                                 responder_cert=test_pki.responder.certificate,
                                 responder_key=test_pki.responder.private_key)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ocsp_app(settings_overrides, test_pki, ocsp_responder) -> Iterator:
    with provider_app({**settings_overrides, "jpki_trust_anchors": [str(test_pki.root_path)],
                       "jpki_revocation": "ocsp", "jpki_ocsp_url": ocsp_responder.url}
                      ) as application:
        yield application


@pytest.fixture(scope="session")
def crl_svc(crl_app):
    return crl_app.extensions["mynagate"]


@pytest.fixture
def card_browser(crl_app) -> CardBrowser:
    return CardBrowser(crl_app.test_client())


@pytest.fixture
def ocsp_browser(ocsp_app) -> CardBrowser:
    return CardBrowser(ocsp_app.test_client())


@pytest.fixture
def travel(monkeypatch):
    """Move the card service's clock (challenge expiry, certificate and CRL validity)."""
    from idp.auth import card as card_service

    def to(seconds: float) -> None:
        real = card_service.time.time
        monkeypatch.setattr(card_service, "_now", lambda: real() + seconds)

    return to
