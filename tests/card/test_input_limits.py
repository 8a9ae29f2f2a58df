"""The card endpoints read JSON with ``force=True`` (the bridge's page may send any content
type): the one JSON size and depth limit (idp.input_limits) holds there too, so a hostile
page or network neighbour sending a deeply nested body gets a 400, never a 500."""

from __future__ import annotations

import json

import pytest

from idp.input_limits import JSON_MAX_BYTES, JSON_MAX_DEPTH

BODIES = {
    "deep": "[" * 20_000 + "]" * 20_000,
    "just too deep": json.dumps({"format": "jpki-auth:1", "x": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}),
    "huge": json.dumps({"format": "jpki-auth:1", "certificate": "A" * JSON_MAX_BYTES}),
}


def _limit_in(response, body: str) -> bool:
    text = response.get_json()["error_description"]
    return str(JSON_MAX_BYTES if body == "huge" else JSON_MAX_DEPTH) in text


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
@pytest.mark.parametrize("body", sorted(BODIES))
def test_card_verify_refuses_oversized_json(card_browser, body, content_type):
    response = card_browser.c.post("/login/card/verify", data=BODIES[body],
                                   content_type=content_type,
                                   headers={"X-CSRFToken": card_browser.csrf()})
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert _limit_in(response, body)


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
@pytest.mark.parametrize("body", sorted(BODIES))
def test_pairing_completion_refuses_oversized_json(crl_app, body, content_type):
    response = crl_app.test_client().post("/login/card/pair/ABCD-EFGH", data=BODIES[body],
                                          content_type=content_type)
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert _limit_in(response, body)


def test_a_body_within_the_limits_reaches_the_card_check(card_browser):
    response = card_browser.c.post("/login/card/verify",
                                   data=json.dumps({"format": "jpki-auth:1"}),
                                   content_type="text/plain",
                                   headers={"X-CSRFToken": card_browser.csrf()})
    # Refused by the card check (an incomplete token), not by the limits.
    assert response.status_code == 400
    assert "JSON body" not in response.get_json()["error_description"]
