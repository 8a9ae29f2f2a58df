"""The card sign-in endpoint dispatches on the token's format through the one registry."""

from __future__ import annotations

import pytest

from idp.jpki.token import FORMATS
from tests.card.helpers import ORIGIN, make_token
from tests.card.test_card_errors import refused
from tests.jpki.test_formats import PHONE_FORMAT, phone_token


class _PhoneCard:
    def __init__(self, card) -> None:
        self.der, self.private_key = card.der, card.key


@pytest.fixture
def bound_card(crl_svc, new_card, student):
    from tests.card.test_card_flow import bind_directly

    card = new_card()
    bind_directly(crl_svc, student, card)
    return card


def test_endpoint_signs_in_with_a_registered_second_format(monkeypatch, card_browser,
                                                           bound_card):
    monkeypatch.setitem(FORMATS, PHONE_FORMAT.name, PHONE_FORMAT)
    answer = card_browser.challenge()
    response = card_browser.verify(phone_token(_PhoneCard(bound_card), ORIGIN,
                                               answer["challenge"]))
    assert response.status_code == 200, response.get_json()
    assert "redirect" in response.get_json()


def test_endpoint_refuses_an_unregistered_format_and_keeps_the_challenge(card_browser,
                                                                        bound_card):
    """Abuse: a hostile page posts a well-signed token of a format nobody registered; it is
    refused before the challenge is spent, so the real card can still use it."""
    answer = card_browser.challenge()
    refused(card_browser.verify(phone_token(_PhoneCard(bound_card), ORIGIN,
                                            answer["challenge"])), "invalid_request", 400)
    real = make_token(bound_card.der, bound_card.key, answer["challenge"])
    assert card_browser.verify(real).status_code == 200
