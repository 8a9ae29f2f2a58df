"""The card-linking ceremony (issue 8): a password-level linking sign-in, a confirmation page
naming the account, a pending card that lives only in the login transaction it was tapped
in, admins linking only after TOTP, and a second card as a confirmed, audited event."""

from __future__ import annotations

import pyotp
from sqlalchemy import select

from idp.accounts.cards import bindings_of
from idp.signin.context import ACR_CARD, ACR_PASSWORD
from idp.store.models import AuditEvent, CardBinding
from tests.admin.conftest import _make_account
from tests.card.helpers import CardBrowser, error_of
from tests.card.test_card_flow import bind_directly, id_token_claims
from tests.conftest import Student, csrf_of, query_of


def _tap_unlinked(browser: CardBrowser, card, txn: str | None = None) -> str:
    """Tap a card linked to nothing; returns the login page URL the script is sent to."""
    answer = browser.use_card(card, txn)
    assert error_of(answer) == "card_not_linked"
    return answer.get_json()["redirect"]


def _password(browser: CardBrowser, url: str, person) -> object:
    return browser.password_login(browser.c.get(url), person)


def _bindings(svc, account_id: str) -> list[CardBinding]:
    with svc.db.session() as db:
        return bindings_of(db, account_id)


def _events(svc, event: str, account_id: str) -> list[AuditEvent]:
    with svc.db.session() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == event,
                                                        AuditEvent.account_id == account_id)))


def _as_student(admin) -> Student:
    return Student(admin.id, admin.school_code, admin.login_id, admin.password)


def _session(browser: CardBrowser) -> dict:
    with browser.c.session_transaction() as session:
        return dict(session)


# ----------------------------------------------------------------------------- 1. acr
def test_linking_sign_in_is_password_level_and_only_the_next_card_sign_in_is_card_level(
        crl_app, crl_svc, new_card, student, rp):
    card = new_card()
    first = CardBrowser(crl_app.test_client())
    txn, verifier = first.start_authorization(rp)
    query = first.password_after_card(first.use_card(card, txn), student, rp)
    claims = id_token_claims(first.c, crl_svc, rp, query, verifier)
    assert claims["acr"] == ACR_PASSWORD and claims["amr"] == ["pwd"]
    assert _session(first)["acr"] == ACR_PASSWORD
    # Same browser, the linked card now: card level.
    txn2, verifier2 = first.start_authorization(rp, prompt="login")
    query2 = first.follow_json_redirect(first.use_card(card, txn2), rp)
    assert id_token_claims(first.c, crl_svc, rp, query2, verifier2)["acr"] == ACR_CARD


# ----------------------------------------------------------------------------- 2. confirm
def test_confirmation_page_names_the_account_and_nothing_is_linked_before_tsunagu(
        crl_app, crl_svc, new_card, student, rp, school):
    browser = CardBrowser(crl_app.test_client())
    txn, _ = browser.start_authorization(rp)
    signed_in = _password(browser, _tap_unlinked(browser, new_card(), txn), student)
    assert signed_in.status_code == 303
    page = browser.c.get(signed_in.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "このカードを、このIDにつなぐ？" in html
    assert school.name in html and student.login_id in html and "山田 花子" in html
    assert "つなぐ" in html and "つながない" in html
    assert 'id="second-card"' not in html
    assert _bindings(crl_svc, student.id) == []  # shown, not linked
    browser.choose_link(page)
    [binding] = _bindings(crl_svc, student.id)
    assert binding.linked_with_mfa is False
    [event] = _events(crl_svc, "card.bound", student.id)
    assert event.details["second_card"] is False


def test_tsunaganai_drops_the_card_and_the_sign_in_goes_on_without_it(
        crl_app, crl_svc, new_card, student, rp):
    card = new_card()
    browser = CardBrowser(crl_app.test_client())
    txn, verifier = browser.start_authorization(rp)
    declined = browser.link_after_card(browser.use_card(card, txn), student, link=False)
    query = browser.finish(declined, rp)
    assert id_token_claims(browser.c, crl_svc, rp, query, verifier)["acr"] == ACR_PASSWORD
    assert _bindings(crl_svc, student.id) == []
    assert _events(crl_svc, "card.link_declined", student.id)
    assert linked_to_nothing(crl_app, card)


def linked_to_nothing(crl_app, card) -> bool:
    return error_of(CardBrowser(crl_app.test_client()).use_card(card)) == "card_not_linked"


def test_a_cross_site_post_cannot_press_tsunagu(crl_app, crl_svc, new_card, student, rp):
    """Abuse: a hostile page posts the form for the child: no CSRF token, no link."""
    browser = CardBrowser(crl_app.test_client())
    txn, _ = browser.start_authorization(rp)
    signed_in = _password(browser, _tap_unlinked(browser, new_card(), txn), student)
    card_id = query_of(signed_in.headers["Location"])["card"]
    forged = browser.c.post("/login/link", data={"txn": txn, "card": card_id, "link": "1"})
    assert forged.status_code == 400
    assert _bindings(crl_svc, student.id) == []


def test_confirmation_page_is_only_for_the_account_that_gave_its_password(
        crl_app, crl_svc, new_card, make_student, rp):
    """Abuse: no one reaches the confirmation page without the password sign-in of this
    very browser; a copied link is useless in another browser."""
    student = make_student()
    browser = CardBrowser(crl_app.test_client())
    txn, _ = browser.start_authorization(rp)
    url = _tap_unlinked(browser, new_card(), txn)
    link_url = "/login/link?" + url.split("?", 1)[1]
    assert browser.c.get(link_url).status_code == 400  # no password yet
    signed_in = _password(browser, url, student)
    other = CardBrowser(crl_app.test_client())
    page = other.c.get(signed_in.headers["Location"])
    assert page.status_code == 400 and "カードはつながっていません" in page.get_data(as_text=True)
    assert _bindings(crl_svc, student.id) == []


# ----------------------------------------------------------------------------- 3. lifetime
def test_shared_pc_next_student_is_not_offered_the_card_left_pending(
        crl_app, crl_svc, new_card, make_student, rp):
    """Abuse: A taps an unlinked card and walks away; B starts a new sign-in and signs in
    with B's password: B gets no card and is not even offered A's."""
    student_a, student_b = make_student(), make_student()
    card_a = new_card()
    pc = CardBrowser(crl_app.test_client())
    txn_a, _ = pc.start_authorization(rp)
    left_open = _tap_unlinked(pc, card_a, txn_a)
    txn_b, verifier = pc.start_authorization(rp)  # B's own new sign-in
    page = pc.c.get(f"/login?txn={txn_b}")
    html = page.get_data(as_text=True)
    assert "いちどだけ" not in html and 'name="card"' not in html
    response = pc.password_login(page, student_b)
    assert not response.headers["Location"].startswith("/login/link")
    query = pc.finish(response, rp)
    assert id_token_claims(pc.c, crl_svc, rp, query, verifier)["acr"] == ACR_PASSWORD
    assert _bindings(crl_svc, student_b.id) == [] == _bindings(crl_svc, student_a.id)
    # Even A's old page no longer carries the card: the new request dropped it.
    assert 'name="card"' not in pc.c.get(left_open).get_data(as_text=True)
    assert linked_to_nothing(crl_app, card_a)


def test_password_under_another_transaction_never_sees_the_card(
        crl_app, crl_svc, new_card, student, rp):
    """Two sign-ins open in one browser: the card tapped in the first is not linked by the
    password given in the second, even with the card's id copied into the form."""
    browser = CardBrowser(crl_app.test_client())
    txn_one, _ = browser.start_authorization(rp)
    txn_two, _ = browser.start_authorization(rp)
    url = _tap_unlinked(browser, new_card(), txn_one)
    page = browser.c.get(f"/login?txn={txn_two}").get_data(as_text=True)
    response = browser.c.post("/login", data={
        "csrf_token": csrf_of(page), "school": student.school_code,
        "login_id": student.login_id, "password": student.password, "txn": txn_two,
        "card": query_of(url)["card"]})
    assert response.status_code == 303
    assert not response.headers["Location"].startswith("/login/link")
    assert _bindings(crl_svc, student.id) == []


def test_sign_out_drops_the_pending_card(crl_app, crl_svc, new_card, student):
    browser = CardBrowser(crl_app.test_client())
    url = _tap_unlinked(browser, new_card())
    page = browser.c.get("/logout").get_data(as_text=True)
    browser.c.post("/logout", data={"csrf_token": csrf_of(page), "confirm": "1"})
    html = browser.c.get(url).get_data(as_text=True)
    assert 'name="card"' not in html and "いちどだけ" not in html
    response = browser.password_login(browser.c.get(url), student)
    assert not response.headers["Location"].startswith("/login/link")
    assert _bindings(crl_svc, student.id) == []


def test_a_pending_card_is_dropped_after_five_minutes(crl_app, crl_svc, new_card, student):
    browser = CardBrowser(crl_app.test_client())
    url = _tap_unlinked(browser, new_card())
    assert 'name="card"' in browser.c.get(url).get_data(as_text=True)
    with browser.c.session_transaction() as session:
        session["pending_card"] = {**session["pending_card"],
                                   "at": session["pending_card"]["at"] - 301}
    page = browser.c.get(url)
    assert 'name="card"' not in page.get_data(as_text=True)
    response = browser.password_login(page, student)
    assert not response.headers["Location"].startswith("/login/link")
    assert _bindings(crl_svc, student.id) == []


# ----------------------------------------------------------------------------- 4. admins
def test_known_admin_password_and_an_unlinked_card_give_no_admin_access_and_no_binding(
        crl_app, crl_svc, new_card, school):
    """Abuse: the attacker knows the admin's password and holds their own unlinked card."""
    admin = _make_account(crl_svc, school, "school_admin")
    attacker = CardBrowser(crl_app.test_client())
    card = new_card()
    refused = _password(attacker, _tap_unlinked(attacker, card), _as_student(admin))
    assert refused.status_code == 403
    assert "<ruby>確認<rt>かくにん</rt></ruby>コード" in refused.get_data(as_text=True)
    assert attacker.c.get("/admin/accounts").status_code == 303
    assert "account_id" not in _session(attacker)  # not signed in either
    assert _bindings(crl_svc, admin.id) == []
    assert linked_to_nothing(crl_app, card)


def test_admin_links_a_card_after_totp_and_then_the_card_opens_admin(
        crl_app, crl_svc, new_card, school):
    admin = _make_account(crl_svc, school, "platform_admin")
    browser = CardBrowser(crl_app.test_client())
    card = new_card()
    assert _password(browser, _tap_unlinked(browser, card), _as_student(admin)) \
        .status_code == 403
    page = browser.c.get("/admin/login").get_data(as_text=True)
    browser.c.post("/admin/login", data={
        "csrf_token": csrf_of(page), "school": admin.school_code, "login_id": admin.login_id,
        "password": admin.password, "next": ""})
    page = browser.c.get("/admin/totp").get_data(as_text=True)
    after_totp = browser.c.post("/admin/totp", data={
        "csrf_token": csrf_of(page), "code": pyotp.TOTP(admin.totp_secret).now()})
    assert after_totp.headers["Location"].startswith("/login/link")
    confirm = browser.c.get(after_totp.headers["Location"])
    assert admin.login_id in confirm.get_data(as_text=True)
    assert browser.choose_link(confirm).headers["Location"].endswith("/admin/")
    [binding] = _bindings(crl_svc, admin.id)
    assert binding.linked_with_mfa is True
    # Another day, a fresh browser: the card linked under TOTP stands in for TOTP.
    later = CardBrowser(crl_app.test_client())
    assert later.use_card(card).status_code == 200
    assert _session(later)["card_binding"] == binding.id
    assert later.c.get("/admin/accounts").status_code == 200


def test_card_bound_without_totp_does_not_open_admin(crl_app, crl_svc, new_card, school):
    """Abuse: a card linked with the password alone (before this rule) is no backdoor."""
    admin = _make_account(crl_svc, school, "school_admin")
    card = new_card()
    bind_directly(crl_svc, _as_student(admin), card)
    browser = CardBrowser(crl_app.test_client())
    assert browser.use_card(card).status_code == 200
    assert _session(browser)["acr"] == ACR_CARD
    assert browser.c.get("/admin/accounts").status_code == 303


# ----------------------------------------------------------------------------- 5. second
def test_second_card_is_confirmed_audited_and_shown_to_student_and_admin(
        crl_app, crl_svc, new_card, student, rp, school):
    """Abuse: a classmate who knows the password adds their own card: it takes a confirmed
    step that says a card is already there (and will be replaced), it is audited, and both
    pages show the first card as replaced, never as a quiet second active card."""
    bind_directly(crl_svc, student, new_card())
    first_id = _bindings(crl_svc, student.id)[0].id
    browser = CardBrowser(crl_app.test_client())
    txn, _ = browser.start_authorization(rp)
    signed_in = _password(browser, _tap_unlinked(browser, new_card(), txn), student)
    confirm = browser.c.get(signed_in.headers["Location"])
    html = confirm.get_data(as_text=True)
    assert 'id="second-card"' in html
    assert "もう1<ruby>枚<rt>まい</rt></ruby>のカードがつながっています" in html
    assert "もう使えなくなります" in html
    browser.choose_link(confirm)
    events = _events(crl_svc, "card.bound", student.id)
    assert sorted(e.details["second_card"] for e in events) == [False, True]
    assert [e.details["replaced"] for e in events if e.details["second_card"]] == [[first_id]]
    own_page = browser.c.get("/account/").get_data(as_text=True)
    assert 'id="several-cards"' not in own_page
    assert 'class="card-replaced"' in own_page and "新しいカードにかわりました" in own_page

    from tests.admin.conftest import admin_sign_in

    admin = _make_account(crl_svc, school, "platform_admin")
    staff = crl_app.test_client()
    admin_sign_in(staff, admin)
    admin_page = staff.get(f"/admin/accounts/{student.id}").get_data(as_text=True)
    assert f'id="card-status-{first_id}">交換済み' in admin_page


def test_one_card_shows_no_several_cards_notice(crl_app, crl_svc, new_card, student, rp):
    browser = CardBrowser(crl_app.test_client())
    txn, _ = browser.start_authorization(rp)
    browser.password_after_card(browser.use_card(new_card(), txn), student, rp)
    assert 'id="several-cards"' not in browser.c.get("/account/").get_data(as_text=True)


def test_account_made_admin_after_the_offer_cannot_link_without_totp(
        crl_app, crl_svc, new_card, student, rp):
    """Abuse: the offer was made to a student account that became an admin before つなぐ:
    the card is not linked (it would be an admin card linked without TOTP)."""
    from idp.store.models import Account

    browser = CardBrowser(crl_app.test_client())
    txn, _ = browser.start_authorization(rp)
    signed_in = _password(browser, _tap_unlinked(browser, new_card(), txn), student)
    confirm = browser.c.get(signed_in.headers["Location"])
    with crl_svc.db.session() as db:
        db.get(Account, student.id).role = "school_admin"
    assert browser.choose_link(confirm).status_code == 403
    assert _bindings(crl_svc, student.id) == []


def test_junk_on_the_confirmation_page_is_a_readable_refusal(crl_app, new_card, student, rp):
    browser = CardBrowser(crl_app.test_client())
    txn, _ = browser.start_authorization(rp)
    signed_in = _password(browser, _tap_unlinked(browser, new_card(), txn), student)
    page = browser.c.get(signed_in.headers["Location"]).get_data(as_text=True)
    assert browser.c.get("/login/link", query_string={"txn": "\x00" * 80}).status_code == 400
    posted = browser.c.post("/login/link", data={"csrf_token": csrf_of(page), "card": "wrong",
                                                 "txn": txn, "link": "1"})
    assert posted.status_code == 400
    for query in ({"card": "x" * 5000}, {"txn": "y" * 80, "card": "a"}, {}):
        response = browser.c.get("/login/link", query_string=query)
        assert response.status_code == 400 and 'id="error-message"' in \
            response.get_data(as_text=True)
    posted = browser.c.post("/login/link", data={"csrf_token": csrf_of(page), "card": "wrong",
                                                 "txn": txn, "link": "1"})
    assert posted.status_code == 400
