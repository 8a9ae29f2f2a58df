"""The card page brings its first challenge (idp.auth.card_views.card_page), so the first
try needs no request for one. It is the challenge the endpoint would have issued: bound to
this browser and this login transaction, used once, replaced by the next one issued."""

from __future__ import annotations

import re

from tests.card.helpers import CardBrowser, make_token
from tests.card.test_card_errors import refused
from tests.card.test_card_flow import bind_directly


def _signed(card, challenge: dict) -> dict:
    return make_token(card.der, card.key, challenge["challenge"], challenge["origin"])


def test_the_pages_challenge_signs_in(crl_app, crl_svc, new_card, student, rp):
    card = new_card()
    bind_directly(crl_svc, student, card)
    browser = CardBrowser(crl_app.test_client())
    txn, _verifier = browser.start_authorization(rp, state="from-page")
    challenge = browser.page_challenge(txn)
    assert challenge["origin"] == crl_svc.settings.issuer and len(challenge["challenge"]) >= 43
    query = browser.follow_json_redirect(browser.verify(_signed(card, challenge), txn), rp)
    assert query["state"] == "from-page" and "code" in query


def test_the_page_is_never_cached(card_browser):
    page = card_browser.card_page()
    assert page.headers["Cache-Control"] == "no-store"
    assert 'data-challenge="' in page.get_data(as_text=True)


def test_a_classmate_cannot_use_the_challenge_of_anothers_page(crl_app, new_card, crl_svc,
                                                               student):
    """Someone who read the page over a shoulder (or its source on a shared PC) holds the
    challenge, but not the browser it was issued to."""
    card = new_card()
    bind_directly(crl_svc, student, card)
    owner, classmate = CardBrowser(crl_app.test_client()), CardBrowser(crl_app.test_client())
    token = _signed(card, owner.page_challenge())
    refused(classmate.verify(token), "challenge_not_found", 400)
    # The owner's own try still works: the classmate's attempt spent nothing of it.
    assert owner.verify(token).status_code == 200


def test_the_pages_challenge_is_used_once(card_browser, new_card, crl_svc, student):
    card = new_card()
    bind_directly(crl_svc, student, card)
    token = _signed(card, card_browser.page_challenge())
    assert card_browser.verify(token).status_code == 200
    refused(card_browser.verify(token), "challenge_not_found", 400)


def test_loading_the_page_again_replaces_its_challenge(card_browser, new_card, crl_svc,
                                                       student):
    """One live challenge per browser and transaction: an old tab's challenge does not sign
    in once the page was loaded again (its try is refused, and nothing is signed in)."""
    card = new_card()
    bind_directly(crl_svc, student, card)
    old = card_browser.page_challenge()
    new = card_browser.page_challenge()
    assert old["challenge"] != new["challenge"]
    refused(card_browser.verify(_signed(card, old)), "signature_invalid", 403)
    refused(card_browser.verify(_signed(card, new)), "challenge_not_found", 400)


def test_the_pages_challenge_belongs_to_its_transaction(crl_app, new_card, crl_svc, student,
                                                        rp):
    card = new_card()
    bind_directly(crl_svc, student, card)
    browser = CardBrowser(crl_app.test_client())
    txn, _verifier = browser.start_authorization(rp)
    token = _signed(card, browser.page_challenge(txn))
    refused(browser.verify(token), "challenge_not_found", 400)  # posted without the txn
    assert browser.verify(token, txn).status_code == 200


def test_an_expired_transaction_gets_no_challenge(card_browser):
    html = card_browser.card_page("no-such-transaction").get_data(as_text=True)
    assert "data-challenge=" not in html


def test_card_sign_in_off_brings_no_challenge(client):
    """The default test app has no trust anchors: card sign-in is off."""
    html = client.get("/login/card").get_data(as_text=True)
    assert 'id="card-off"' in html and "data-challenge=" not in html


def test_the_app_name_for_the_pin_window_is_escaped(crl_app, make_rp, crl_svc):
    """An app's registered name goes into the page's attribute for the bridge's PIN window:
    escaped there like any text, never markup."""
    rp = make_rp(name='算数"><script>alert(1)</script>')
    browser = CardBrowser(crl_app.test_client())
    txn, _verifier = browser.start_authorization(rp)
    html = browser.card_page(txn).get_data(as_text=True)
    found = re.search(r'data-challenge-app="([^"]*)"', html)
    assert found and "<script>" not in found[1] and "&lt;script&gt;" in found[1]
