"""The challenge answer names the app being signed in to (`app`, display only), so the card
bridge can say it in its PIN window (docs/card-bridge-protocol.md §1)."""

from __future__ import annotations

import unicodedata

from idp.auth.card import APP_NAME_MAX, app_display_name
from idp.store.models import Client


def test_the_challenge_of_a_login_transaction_names_its_app(card_browser, make_rp) -> None:
    rp = make_rp(name="さんすうドリル")
    txn, _verifier = card_browser.start_authorization(rp)
    answer = card_browser.challenge(txn)
    assert answer["app"] == "さんすうドリル"
    assert set(answer) == {"challenge", "origin", "expires_in", "app"}


def test_without_a_transaction_there_is_no_app_to_name(card_browser) -> None:
    # A sign-in to the provider's own pages: the bridge names the origin alone.
    answer = card_browser.challenge()
    assert "app" not in answer and answer["challenge"]


def test_a_hostile_client_name_is_cleaned_before_it_reaches_the_bridge(card_browser, crl_svc,
                                                                        make_rp) -> None:
    rp = make_rp(name="ok")
    hostile = "\x1b]0;evil\x07算数\u202eルリド\u202c\u2066x\u2069\r\nドリル"
    hostile += "あ" * (200 - len(hostile))  # as long as the column holds
    with crl_svc.db.session() as db:
        db.get(Client, rp.client_id).name = hostile
    txn, _verifier = card_browser.start_authorization(rp)
    app = card_browser.challenge(txn)["app"]
    assert app.startswith("]0;evil算数ルリドx ドリルあ")
    assert len(app) == APP_NAME_MAX and app.endswith("…")
    assert not any(unicodedata.category(c)[0] == "C" for c in app)


def test_the_name_is_cleaned_and_bounded() -> None:
    assert app_display_name("  算数\tドリル\n") == "算数 ドリル"
    assert app_display_name("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069") == ""
    assert app_display_name("あ" * APP_NAME_MAX) == "あ" * APP_NAME_MAX
    assert app_display_name("あ" * (APP_NAME_MAX + 1)) == "あ" * (APP_NAME_MAX - 1) + "…"

