"""Each refusal of the card protocol is produced by the input that should produce it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from idp.jpki.errors import CODES
from idp.jpki.testing.pki_dir import rewrite_crl
from idp.jpki.testing.testpki import create_root, generate_rsa_key, issue_user_cert
from idp.store.models import AuditEvent
from tests.card.helpers import ORIGIN, Card, CardBrowser, error_of, make_token

DAY = timedelta(days=1)


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def bound_card(crl_svc, new_card, student):
    from tests.card.test_card_flow import bind_directly

    card = new_card()
    bind_directly(crl_svc, student, card)
    return card


def refused(response, code: str, status: int) -> None:
    body = response.get_json()
    assert body is not None and body["error"] == code, (response.status_code, body)
    assert response.status_code == status
    assert body["error_description"]  # a readable sentence for the page
    assert code in CODES


def test_replayed_token_finds_no_challenge(card_browser, bound_card):
    answer = card_browser.challenge()
    token = make_token(bound_card.der, bound_card.key, answer["challenge"])
    assert card_browser.verify(token).status_code == 200
    refused(card_browser.verify(token), "challenge_not_found", 400)


def test_challenge_is_single_use_even_when_the_token_was_bad(card_browser, bound_card):
    answer = card_browser.challenge()
    wrong = make_token(bound_card.der, bound_card.key, answer["challenge"], "https://evil.test")
    refused(card_browser.verify(wrong), "signature_invalid", 403)
    good = make_token(bound_card.der, bound_card.key, answer["challenge"])
    refused(card_browser.verify(good), "challenge_not_found", 400)


def test_never_issued_challenge(card_browser, bound_card):
    token = make_token(bound_card.der, bound_card.key, "A" * 43)
    refused(card_browser.verify(token), "challenge_not_found", 400)


def test_challenge_of_another_session(crl_app, bound_card):
    victim, attacker = CardBrowser(crl_app.test_client()), CardBrowser(crl_app.test_client())
    answer = victim.challenge()
    token = make_token(bound_card.der, bound_card.key, answer["challenge"])
    refused(attacker.verify(token), "challenge_not_found", 400)
    # Even when the attacker holds a challenge of its own, the victim's is not accepted.
    attacker.challenge()
    refused(attacker.verify(token), "signature_invalid", 403)


def test_challenge_of_another_login_transaction(crl_app, bound_card, rp):
    browser = CardBrowser(crl_app.test_client())
    txn, _ = browser.start_authorization(rp)
    answer = browser.challenge(txn)
    token = make_token(bound_card.der, bound_card.key, answer["challenge"])
    refused(browser.verify(token), "challenge_not_found", 400)  # posted without the txn


def test_a_new_challenge_replaces_the_previous_one(card_browser, bound_card):
    first = card_browser.challenge()
    card_browser.challenge()
    token = make_token(bound_card.der, bound_card.key, first["challenge"])
    refused(card_browser.verify(token), "signature_invalid", 403)


def test_other_origin_gives_signature_invalid(card_browser, bound_card):
    answer = card_browser.challenge()
    phished = make_token(bound_card.der, bound_card.key, answer["challenge"],
                         origin="https://idp.example.jp.evil.test")
    refused(card_browser.verify(phished), "signature_invalid", 403)


def test_expired_challenge(card_browser, bound_card, travel):
    answer = card_browser.challenge()
    travel(301)
    token = make_token(bound_card.der, bound_card.key, answer["challenge"])
    refused(card_browser.verify(token), "challenge_expired", 400)


def test_challenge_is_still_good_just_before_it_expires(card_browser, bound_card, travel):
    answer = card_browser.challenge()
    travel(295)
    token = make_token(bound_card.der, bound_card.key, answer["challenge"])
    assert card_browser.verify(token).status_code == 200


def test_expired_certificate(card_browser, new_card):
    card = new_card(not_before=now() - 5 * 365 * DAY, not_after=now() - DAY)
    refused(card_browser.use_card(card), "certificate_expired", 403)


def test_not_yet_valid_certificate(card_browser, new_card):
    card = new_card(not_before=now() + DAY, not_after=now() + 365 * DAY)
    refused(card_browser.use_card(card), "certificate_not_yet_valid", 403)


def test_certificate_of_another_ca_with_the_same_name(card_browser, card_keys):
    impostor = create_root(key=card_keys.get())  # same J-LIS-like DN, other key
    issued = issue_user_cert(impostor, key=card_keys.get())
    refused(card_browser.use_card(Card(issued.certificate, issued.private_key)),
            "certificate_untrusted", 403)


def test_1024_bit_key(card_browser, new_card):
    card = new_card(key=generate_rsa_key(1024))
    refused(card_browser.use_card(card), "certificate_untrusted", 403)


def test_signature_by_another_key(card_browser, new_card, card_keys):
    card = new_card()
    other_key = next(k for k in card_keys.keys if k.public_key().public_numbers()
                     != card.key.public_key().public_numbers())
    refused(card_browser.use_card(Card(card.certificate, other_key)), "signature_invalid", 403)


def test_signing_certificate_profile_is_refused(card_browser, new_card):
    card = new_card(signing_profile=True)
    refused(card_browser.use_card(card), "certificate_untrusted", 403)


def test_revoked_by_crl(card_browser, crl_svc, test_pki, new_card, student):
    from tests.card.test_card_flow import bind_directly

    card = new_card()
    bind_directly(crl_svc, student, card)
    assert card_browser.use_card(card).status_code == 200
    rewrite_crl(test_pki.directory, [card.serial])
    crl_svc.card.refresh_crls()
    refused(card_browser.use_card(card), "certificate_revoked", 403)
    with crl_svc.db.session() as db:
        event = db.scalar(select(AuditEvent).where(
            AuditEvent.event == "login.card", AuditEvent.outcome == "refused",
            AuditEvent.details["reason"].as_string() == "certificate_revoked"))
        assert event is not None


def test_stale_crl_fails_closed(card_browser, bound_card, travel):
    # The test CRL is good for 7 days; eight days on, nobody has refreshed it.
    travel(8 * 24 * 3600)
    refused(card_browser.use_card(bound_card), "revocation_unavailable", 503)


def test_revoked_by_ocsp(ocsp_browser, ocsp_responder, new_card):
    card = new_card()
    ocsp_responder.revoke(card.serial)
    refused(ocsp_browser.use_card(card), "certificate_revoked", 403)


def test_good_by_ocsp_then_not_linked(ocsp_browser, new_card):
    refused(ocsp_browser.use_card(new_card()), "card_not_linked", 403)


def test_ocsp_responder_down(ocsp_browser, ocsp_responder, new_card):
    ocsp_responder.set_down(True)
    try:
        refused(ocsp_browser.use_card(new_card()), "revocation_unavailable", 503)
    finally:
        ocsp_responder.set_down(False)


def test_revoked_binding_refuses(card_browser, crl_svc, bound_card, student):
    from idp.accounts.cards import bindings_of, revoke_binding

    with crl_svc.db.session() as db:
        [binding] = bindings_of(db, student.id)
        revoke_binding(db, binding.id, actor="test")
    refused(card_browser.use_card(bound_card), "certificate_revoked", 403)


def test_inactive_account_is_refused_without_a_password_detour(card_browser, crl_svc,
                                                               bound_card, student):
    from idp.store.models import Account

    with crl_svc.db.session() as db:
        db.get(Account, student.id).active = False
    response = card_browser.use_card(bound_card)
    refused(response, "card_not_linked", 403)
    assert "redirect" not in response.get_json()


def test_without_csrf_header_is_refused_as_json(card_browser):
    card_browser.card_page()
    response = card_browser.c.post("/login/card/challenge")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_expired_login_transaction_gets_no_challenge(card_browser):
    response = card_browser.c.post("/login/card/challenge", query_string={"txn": "gone"},
                                   headers={"X-CSRFToken": card_browser.csrf()})
    refused(response, "invalid_request", 400)


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b"null", b'"jpki-auth:1"', b"{}",
    b'{"format": "jpki-auth:2", "certificate": "AA==", "algorithm": "RS256", '
    b'"signature": "AA==", "bridge": "x/1"}',
    b'{"format": "jpki-auth:1", "certificate": "%%%", "algorithm": "RS256", '
    b'"signature": "AA==", "bridge": "x/1"}',
    b'{"format": "jpki-auth:1", "certificate": "MIIBAAAA", "algorithm": "RS256", '
    b'"signature": "AA==", "bridge": "x/1"}',
    b'{"format": "jpki-auth:1", "certificate": "AA==", "algorithm": "ES256", '
    b'"signature": "AA==", "bridge": "x/1"}',
])
def test_malformed_tokens_are_invalid_requests(card_browser, body):
    card_browser.challenge()
    refused(card_browser.verify(None, raw=body), "invalid_request", 400)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12),
                                                                      children, max_size=5),
    max_leaves=12)
_base64ish = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_",
            max_size=80),
    st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=300).map(lambda b: base64.b64encode(b"\x30\x82\x01\x00" + b).decode()),
)
_token_like = st.fixed_dictionaries({
    "format": st.sampled_from(["jpki-auth:1", "jpki-auth:0", ""]),
    "certificate": _base64ish, "algorithm": st.sampled_from(["RS256", "none"]),
    "signature": _base64ish, "bridge": st.text(max_size=30)})


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(_token_like.map(json.dumps).map(str.encode),
                      _json_values.map(json.dumps).map(str.encode),
                      st.binary(max_size=200)))
def test_no_malformed_input_gives_a_500(crl_app, body):
    browser = CardBrowser(crl_app.test_client())
    browser.challenge()
    response = browser.verify(None, raw=body)
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:300]
    assert error_of(response) in CODES


def test_garbage_der_in_a_good_envelope_never_gives_a_500(card_browser, bound_card):
    der = bytearray(bound_card.der)
    for position in (0, 4, 20, len(der) // 2, len(der) - 300, len(der) - 3):
        mutated = bytes(der)
        mutated = mutated[:position] + bytes([mutated[position] ^ 0xFF]) + mutated[position + 1:]
        answer = card_browser.challenge()
        token = make_token(mutated, bound_card.key, answer["challenge"], ORIGIN)
        response = card_browser.verify(token)
        assert 400 <= response.status_code < 500, response.get_json()
        assert error_of(response) in CODES
