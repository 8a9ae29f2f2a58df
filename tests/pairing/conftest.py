"""Pairing tests reuse the card tests' provider (test PKI, CRL revocation) and cards."""

from tests.card.conftest import (  # noqa: F401 - fixtures
    card_keys,
    crl_app,
    crl_svc,
    new_card,
    test_pki,
    travel,
)
