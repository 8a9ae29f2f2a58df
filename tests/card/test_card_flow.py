"""Card sign-in journeys through the provider: first use, binding, renewal, step-up, tokens."""

from __future__ import annotations

import pytest
from joserfc import jwt
from sqlalchemy import select

from idp.accounts.cards import CardIdentity, bind_card, bindings_of
from idp.jpki.trust import certificate_sha256
from idp.signin.context import ACR_CARD, ACR_PASSWORD
from idp.store.models import Account, AuditEvent, CardBinding
from tests.card.helpers import CardBrowser, error_of
from tests.conftest import query_of, redeem


def id_token_claims(client, svc, rp, query: dict, verifier: str) -> dict:
    response = redeem(client, rp, query["code"], verifier)
    assert response.status_code == 200, response.get_json()
    token = jwt.decode(response.get_json()["id_token"], svc.keys.public_keyset(),
                       algorithms=["RS256", "ES256"])
    return token.claims


def bind_directly(svc, student, card) -> None:
    from datetime import UTC

    with svc.db.session() as db:
        account = db.get(Account, student.id)
        issuer = card.certificate.issuer.rfc4514_string()
        bind_card(db, account, CardIdentity(
            issuer, format(card.serial, "x"), certificate_sha256(card.certificate),
            card.certificate.not_valid_after_utc.astimezone(UTC).replace(tzinfo=None)),
            ip="test")


def card_journey(browser: CardBrowser, svc, rp, card, **params) -> dict:
    """/authorize -> card page -> card -> consent -> code -> ID token claims."""
    txn, verifier = browser.start_authorization(rp, **params)
    query = browser.follow_json_redirect(browser.use_card(card, txn), rp)
    return id_token_claims(browser.c, svc, rp, query, verifier)


def test_token_signed_directly_with_cryptography_signs_in(card_browser, crl_svc, new_card,
                                                         student, rp):
    card = new_card()
    bind_directly(crl_svc, student, card)
    claims = card_journey(card_browser, crl_svc, rp, card)
    assert claims["acr"] == ACR_CARD
    assert claims["amr"] == ["sc", "pin", "hwk"]
    crl_svc.events.flush()  # the login.card event goes through the event log
    with crl_svc.db.session() as db:
        binding = db.scalar(select(CardBinding).where(CardBinding.account_id == student.id))
        assert binding.last_used_at is not None
        assert db.scalar(select(AuditEvent).where(AuditEvent.event == "login.card",
                                                  AuditEvent.account_id == student.id,
                                                  AuditEvent.outcome == "ok"))


def test_the_card_answer_sends_the_browser_straight_to_the_app(crl_app, crl_svc, new_card,
                                                               student, rp):
    """Once the app was agreed to, the verify answer is the app's own redirect with the
    code (what /authorize would send): one round trip fewer for the child's browser."""
    card = new_card()
    bind_directly(crl_svc, student, card)
    card_journey(CardBrowser(crl_app.test_client()), crl_svc, rp, card)  # agrees once
    browser = CardBrowser(crl_app.test_client())
    txn, verifier = browser.start_authorization(rp, state="card-st")
    answer = browser.use_card(card, txn)
    target = answer.get_json()["redirect"]
    assert answer.status_code == 200 and target.startswith(rp.redirect_uri + "?"), target
    query = query_of(target)
    assert query["state"] == "card-st" and query["iss"] == crl_svc.settings.issuer
    claims = id_token_claims(browser.c, crl_svc, rp, query, verifier)
    assert claims["acr"] == ACR_CARD
    # The transaction ended with the code: a second verify in it has nothing to resume.
    assert crl_svc.store.get("txn:" + txn) is None


def test_card_sign_in_without_transaction_goes_to_the_account_page(card_browser, crl_svc,
                                                                   new_card, student):
    card = new_card()
    bind_directly(crl_svc, student, card)
    response = card_browser.use_card(card)
    assert response.status_code == 200
    assert response.get_json()["redirect"].rstrip("/") in ("/account", "")


def test_first_use_links_the_card_with_the_password_then_the_card_alone_signs_in(
        crl_app, crl_svc, new_card, student, rp):
    card = new_card()
    first = CardBrowser(crl_app.test_client())
    txn, verifier = first.start_authorization(rp)
    response = first.use_card(card, txn)
    body = response.get_json()
    assert body["error"] == "card_not_linked" and body["error_description"]
    assert query_of(body["redirect"])["txn"] == txn
    login_page = first.c.get(body["redirect"])
    assert "いちどだけ" in login_page.get_data(as_text=True)  # the page explains
    query = first.password_after_card(response, student, rp)
    claims = id_token_claims(first.c, crl_svc, rp, query, verifier)
    # The sign-in that links the card is a password sign-in: the card proved nothing about
    # the account until it was linked (issue 8; it used to claim the card level).
    assert claims["acr"] == ACR_PASSWORD and claims["amr"] == ["pwd"]
    with crl_svc.db.session() as db:
        [binding] = bindings_of(db, student.id)
        assert binding.serial == format(card.serial, "x")
        assert binding.certificate_sha256 == certificate_sha256(card.certificate)
        assert db.scalar(select(AuditEvent).where(AuditEvent.event == "card.bound",
                                                  AuditEvent.account_id == student.id))

    later = CardBrowser(crl_app.test_client())  # another day, a fresh browser: card alone
    claims_later = card_journey(later, crl_svc, rp, card)
    assert claims_later["acr"] == ACR_CARD and claims_later["amr"] == ["sc", "pin", "hwk"]
    assert claims_later["sub"] == claims["sub"]


def test_renewed_card_keeps_the_pairwise_sub_at_every_relying_party(
        crl_app, crl_svc, new_card, student, make_rp):
    rp_one, rp_two = make_rp(host="math.example.test"), make_rp(host="kanji.example.test")
    old_card, renewed_card = new_card(), new_card()
    bind_directly(crl_svc, student, old_card)
    before = {rp.client_id: card_journey(CardBrowser(crl_app.test_client()), crl_svc, rp,
                                         old_card)["sub"] for rp in (rp_one, rp_two)}
    assert before[rp_one.client_id] != before[rp_two.client_id]  # pairwise

    renewing = CardBrowser(crl_app.test_client())
    txn, verifier = renewing.start_authorization(rp_one)
    query = renewing.password_after_card(renewing.use_card(renewed_card, txn), student, rp_one)
    assert id_token_claims(renewing.c, crl_svc, rp_one, query, verifier)["sub"] == \
        before[rp_one.client_id]

    after = {rp.client_id: card_journey(CardBrowser(crl_app.test_client()), crl_svc, rp,
                                        renewed_card)["sub"] for rp in (rp_one, rp_two)}
    assert after == before
    with crl_svc.db.session() as db:
        # The old binding is kept and visible, as replaced by the renewed one.
        renewed_row, old_row = bindings_of(db, student.id)  # newest first
        assert old_row.status == "replaced" and old_row.replaced_by_id == renewed_row.id


def test_card_linked_elsewhere_is_refused_audited_and_never_moved(
        crl_app, crl_svc, new_card, make_student, rp):
    owner, other = make_student(), make_student()
    card = new_card()
    # Two browsers saw the same unlinked card; the owner links it first.
    late = CardBrowser(crl_app.test_client())
    txn, _ = late.start_authorization(rp)
    late_answer = late.use_card(card, txn)
    assert error_of(late_answer) == "card_not_linked"
    early = CardBrowser(crl_app.test_client())
    early_txn, _ = early.start_authorization(rp)
    early.password_after_card(early.use_card(card, early_txn), owner, rp)

    page = late.c.get(late_answer.get_json()["redirect"])
    response = late.password_login(page, other)
    assert response.status_code == 409
    assert "ほかの人のID" in response.get_data(as_text=True)
    with crl_svc.db.session() as db:
        binding = db.scalar(select(CardBinding).where(
            CardBinding.serial == format(card.serial, "x")))
        assert binding.account_id == owner.id
        refusal = db.scalar(select(AuditEvent).where(AuditEvent.event == "card.bind",
                                                     AuditEvent.account_id == other.id))
        assert refusal.outcome == "refused" and refusal.details["reason"] == "linked_elsewhere"
    # Nobody was signed in in that browser: the next authorize asks to log in again.
    again, _ = late.authorize(rp)
    assert again.headers["Location"].startswith("/login")


def test_binding_to_another_account_directly_is_refused(crl_svc, new_card, make_student):
    from idp.jpki.errors import CardError

    owner, other = make_student(), make_student()
    card = new_card()
    bind_directly(crl_svc, owner, card)
    with pytest.raises(CardError) as refused, crl_svc.db.session() as db:
        account = db.get(Account, other.id)
        bind_card(db, account, CardIdentity(
            card.certificate.issuer.rfc4514_string(), format(card.serial, "x"),
            certificate_sha256(card.certificate),
            card.certificate.not_valid_after_utc.replace(tzinfo=None)),
            ip="test")
    assert refused.value.code == "card_linked_elsewhere"


def test_two_accounts_binding_one_card_at_once_exactly_one_wins(crl_svc, new_card,
                                                                 make_student):
    """Two requests bind the same card to two accounts at the same moment: one binding,
    one clean refusal (audited), nothing else raised, on SQLite and on PostgreSQL."""
    import threading

    from idp.jpki.errors import CardError

    card = new_card()
    identity = CardIdentity(card.certificate.issuer.rfc4514_string(), format(card.serial, "x"),
                            certificate_sha256(card.certificate),
                            card.certificate.not_valid_after_utc.replace(tzinfo=None))
    students = [make_student(), make_student()]
    both_read = threading.Barrier(2, timeout=10)
    outcomes: dict[str, str] = {}

    def bind(student) -> None:
        try:
            with crl_svc.db.session() as db:
                account = db.get(Account, student.id)
                # Both have looked and seen no binding before either inserts.
                assert db.scalar(select(CardBinding).where(
                    CardBinding.serial == identity.serial)) is None
                both_read.wait()
                try:
                    bind_card(db, account, identity, ip="test")
                    outcomes[student.id] = "bound"
                except CardError as exc:
                    outcomes[student.id] = exc.code
        except Exception as exc:  # noqa: BLE001 - recorded and asserted on below
            outcomes[student.id] = repr(exc)

    threads = [threading.Thread(target=bind, args=(s,)) for s in students]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes.values()) == ["bound", "card_linked_elsewhere"], outcomes
    with crl_svc.db.session() as db:
        rows = list(db.scalars(select(CardBinding).where(CardBinding.serial == identity.serial)))
        winner = next(k for k, v in outcomes.items() if v == "bound")
        assert [r.account_id for r in rows] == [winner]
        loser = next(k for k, v in outcomes.items() if v != "bound")
        refusal = db.scalar(select(AuditEvent).where(AuditEvent.event == "card.bind",
                                                     AuditEvent.account_id == loser))
        assert refusal is not None and refusal.outcome == "refused"


def test_client_requiring_the_card_level_never_gets_a_password_sign_in(
        crl_app, crl_svc, new_card, student, make_rp):
    strict = make_rp(host="exam.example.test", required_acr=ACR_CARD)
    browser = CardBrowser(crl_app.test_client())
    txn, _ = browser.start_authorization(strict)
    page = browser.c.get(f"/login?txn={txn}")
    # The card step is shown at once: no password form on the way.
    assert page.status_code == 303 and page.headers["Location"] == f"/login/card?txn={txn}"
    # A hand-made password post (the page offers no form) is refused too.
    response = browser.c.post("/login", data={
        "csrf_token": browser.csrf(txn), "school": student.school_code,
        "login_id": student.login_id, "password": student.password, "txn": txn})
    assert response.status_code == 400
    assert "マイナンバーカードでのサインインが必要" in response.get_data(as_text=True)
    # Still not signed in: /authorize sends the browser back to the login page.
    again, _ = browser.authorize(strict)
    assert again.headers["Location"].startswith("/login")

    card_page = browser.card_page(txn).get_data(as_text=True)
    assert 'id="card-required"' in card_page and 'id="password-tab"' not in card_page
    card = new_card()
    bind_directly(crl_svc, student, card)
    query = browser.follow_json_redirect(browser.use_card(card, txn), strict)
    assert "code" in query


def test_password_session_asking_for_the_card_level_is_sent_to_the_card_page(
        crl_app, crl_svc, new_card, student, rp):
    browser = CardBrowser(crl_app.test_client())
    query, verifier = browser.sign_in_and_authorize(rp, student)
    assert id_token_claims(browser.c, crl_svc, rp, query, verifier)["acr"] == ACR_PASSWORD

    response, verifier = browser.authorize(rp, acr_values=ACR_CARD)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/login") and query_of(location)["reason"] == "card_required"
    txn = query_of(location)["txn"]
    login_page = browser.c.get(location)
    assert login_page.status_code == 303  # the only way on: the card page, at once
    assert login_page.headers["Location"] == f"/login/card?txn={txn}"
    assert 'id="card-required"' in browser.card_page(txn).get_data(as_text=True)

    card = new_card()
    bind_directly(crl_svc, student, card)
    query = browser.follow_json_redirect(browser.use_card(card, txn), rp)
    claims = id_token_claims(browser.c, crl_svc, rp, query, verifier)
    assert claims["acr"] == ACR_CARD and claims["amr"] == ["sc", "pin", "hwk"]


def test_discovery_lists_both_acr_values(card_browser):
    document = card_browser.c.get("/.well-known/openid-configuration").get_json()
    assert set(document["acr_values_supported"]) >= {ACR_PASSWORD, ACR_CARD}


def test_card_page_is_japanese_first_and_wires_the_script(card_browser):
    html = card_browser.card_page().get_data(as_text=True)
    assert 'lang="ja"' in html and "マイナンバーカードでサインイン" in html
    for attribute in ('data-challenge-url="/login/card/challenge"',
                      'data-verify-url="/login/card/verify"', "data-csrf=",
                      'data-bridge-url="http://127.0.0.1:47263"', 'data-password-url="/login"'):
        assert attribute in html
    assert "/static/card.js" in html and 'id="card-start"' in html


def test_required_card_level_cannot_be_lowered_by_the_request(crl_app, student, make_rp):
    strict = make_rp(host="exam2.example.test", required_acr=ACR_CARD)
    browser = CardBrowser(crl_app.test_client())
    response, _ = browser.authorize(strict, acr_values=ACR_PASSWORD)
    location = response.headers["Location"]
    txn = query_of(location)["txn"]
    assert 'name="password"' not in browser.c.get(location).get_data(as_text=True)
    refused = browser.c.post("/login", data={
        "csrf_token": browser.csrf(txn), "school": student.school_code,
        "login_id": student.login_id, "password": student.password, "txn": txn})
    assert refused.status_code == 400


def test_first_use_under_a_card_only_client_links_then_asks_for_the_card_again(
        crl_app, crl_svc, new_card, student, make_rp):
    """Issue 8: linking is password-level, so a card-only app is not answered by it; the
    child is sent back to the card page, told the card is now linked, and the second tap
    signs in at the card level."""
    strict = make_rp(host="exam3.example.test", required_acr=ACR_CARD)
    card = new_card()
    browser = CardBrowser(crl_app.test_client())
    txn, verifier = browser.start_authorization(strict)
    response = browser.use_card(card, txn)
    # The verified card opens the password form once, to link it.
    assert 'name="password"' in browser.c.get(response.get_json()["redirect"]).get_data(
        as_text=True)
    linked = browser.link_after_card(browser.use_card(card, txn), student)
    assert linked.status_code == 303
    location = linked.headers["Location"]
    assert location.startswith("/login/card") and query_of(location)["txn"] == txn
    page = browser.c.get(location).get_data(as_text=True)
    assert 'id="card-linked"' in page and "もう一度カードで" in page
    query = browser.follow_json_redirect(browser.use_card(card, txn), strict)
    claims = id_token_claims(browser.c, crl_svc, strict, query, verifier)
    assert claims["acr"] == ACR_CARD and claims["amr"] == ["sc", "pin", "hwk"]
