"""The card page brings its first challenge (idp.auth.card_views.card_page), so the first
try needs no request for one. It is the challenge the endpoint would have issued: bound to
this browser and this login transaction, used once. Loading the page again brings the live
challenge again and never replaces it; the endpoint's POST, which only the page's script can
make, does."""

from __future__ import annotations

import re

from tests.card.helpers import CardBrowser, token_for
from tests.card.test_card_errors import refused
from tests.card.test_card_flow import bind_directly


def test_the_pages_challenge_signs_in(crl_app, crl_svc, new_card, student, rp):
    card = new_card()
    bind_directly(crl_svc, student, card)
    browser = CardBrowser(crl_app.test_client())
    txn, _verifier = browser.start_authorization(rp, state="from-page")
    challenge = browser.page_challenge(txn)
    assert challenge["origin"] == crl_svc.settings.issuer and len(challenge["challenge"]) >= 43
    query = browser.follow_json_redirect(browser.verify(token_for(card, challenge), txn), rp)
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
    token = token_for(card, owner.page_challenge())
    refused(classmate.verify(token), "challenge_not_found", 400)
    # The owner's own try still works: the classmate's attempt spent nothing of it.
    assert owner.verify(token).status_code == 200


def test_the_pages_challenge_is_used_once(card_browser, new_card, crl_svc, student):
    card = new_card()
    bind_directly(crl_svc, student, card)
    token = token_for(card, card_browser.page_challenge())
    assert card_browser.verify(token).status_code == 200
    refused(card_browser.verify(token), "challenge_not_found", 400)


def test_loading_the_page_again_brings_the_same_challenge(card_browser, new_card, crl_svc,
                                                          student):
    """A second tab, or the same page loaded again, gets the live challenge again (with
    what is left of its life): the first tab's try still signs in, and once one try used
    it, the other's is refused and asks for a new one."""
    card = new_card()
    bind_directly(crl_svc, student, card)
    first = card_browser.page_challenge()
    again = card_browser.page_challenge()
    assert again["challenge"] == first["challenge"] and again["expires_in"] <= 300
    assert card_browser.verify(token_for(card, first)).status_code == 200
    refused(card_browser.verify(token_for(card, again)), "challenge_not_found", 400)


def test_a_prefetch_or_another_sites_link_does_not_spoil_the_open_pages_try(
        crl_app, crl_svc, new_card, student, rp):
    """The card page is a GET, which a browser's prefetch, or a link on another site (the
    session cookie is SameSite=Lax), makes with the child's cookie while the child types the
    PIN on the open page: the open page's try still signs in."""
    card = new_card()
    bind_directly(crl_svc, student, card)
    browser = CardBrowser(crl_app.test_client())
    txn, _verifier = browser.start_authorization(rp, state="open-page")
    on_the_page = browser.page_challenge(txn)
    for _ in range(3):  # a hostile page navigating the browser to the card page, again
        assert browser.c.get("/login/card", query_string={"txn": txn}).status_code == 200
    query = browser.follow_json_redirect(browser.verify(token_for(card, on_the_page), txn), rp)
    assert query["state"] == "open-page" and "code" in query


def test_a_head_request_brings_and_replaces_nothing(card_browser, new_card, crl_svc,
                                                    student, travel):
    card = new_card()
    bind_directly(crl_svc, student, card)
    head = card_browser.c.head("/login/card")
    assert head.status_code == 200 and head.headers["Cache-Control"] == "no-store"
    # Nothing was issued by the HEAD: the page's challenge is a new one, and a later HEAD,
    # even when the challenge is nearly used up, leaves it as it is.
    challenge = card_browser.page_challenge()
    travel(250)
    assert card_browser.c.head("/login/card").status_code == 200
    assert card_browser.verify(token_for(card, challenge)).status_code == 200


def test_a_challenge_nearly_used_up_is_not_handed_out_nor_replaced(card_browser, new_card,
                                                                   crl_svc, student, travel):
    """With less than three minutes left a challenge is no use to a new page (its script
    asks the endpoint when the try starts), but an older page may be using it for its PIN:
    the page brings none and leaves it alone."""
    card = new_card()
    bind_directly(crl_svc, student, card)
    challenge = card_browser.page_challenge()
    travel(150)
    html = card_browser.card_page().get_data(as_text=True)
    assert 'id="card-login"' in html and "data-challenge=" not in html
    assert card_browser.verify(token_for(card, challenge)).status_code == 200


def test_a_page_after_the_challenge_expired_brings_a_new_one(card_browser, new_card,
                                                             crl_svc, student, travel):
    card = new_card()
    bind_directly(crl_svc, student, card)
    old = card_browser.page_challenge()
    travel(301)
    new = card_browser.page_challenge()
    assert new["challenge"] != old["challenge"] and new["expires_in"] == 300
    refused(card_browser.verify(token_for(card, old)), "signature_invalid", 403)


def test_the_endpoint_still_gives_a_new_challenge_each_time(card_browser, new_card, crl_svc,
                                                            student):
    """A try the page's script starts asks the endpoint (a POST with the page's CSRF token,
    which only the page can send): that one replaces the earlier challenge, as the page
    asked for it."""
    card = new_card()
    bind_directly(crl_svc, student, card)
    on_the_page = card_browser.page_challenge()
    asked = card_browser.challenge()
    assert asked["challenge"] != on_the_page["challenge"]
    refused(card_browser.verify(token_for(card, on_the_page)), "signature_invalid", 403)
    refused(card_browser.verify(token_for(card, asked)), "challenge_not_found", 400)


def test_the_pages_challenge_belongs_to_its_transaction(crl_app, new_card, crl_svc, student,
                                                        rp):
    card = new_card()
    bind_directly(crl_svc, student, card)
    browser = CardBrowser(crl_app.test_client())
    txn, _verifier = browser.start_authorization(rp)
    token = token_for(card, browser.page_challenge(txn))
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
