"""Recovery and renewal by card (issue 11): a new password with the card alone right after a
card sign-in, and a renewed card replacing the old binding. The abuse cases sit next to each
feature: a classmate with the password but no card, a stale or spent card sign-in, a card
that is not the account's, CSRF, a replayed form, a replaced or revoked card."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from idp.account.my_page import CARD_RECOVERY_WINDOW
from idp.accounts.cards import bindings_of
from idp.signin.context import ACR_CARD
from idp.store.models import AuditEvent, CardBinding, TokenFamily
from idp.store.models import Token as TokenRow
from tests.card.helpers import CardBrowser, error_of
from tests.card.test_card_flow import bind_directly
from tests.conftest import Browser, Student, csrf_of, redeem

NEW_PASSWORD = "a brand new sentence 42"
PAGE = "/account/password/card"


def _session(browser: Browser) -> dict:
    with browser.c.session_transaction() as session:
        return dict(session)


def _events(svc, event: str, account_id: str) -> list[AuditEvent]:
    svc.events.flush()
    with svc.db.session() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == event,
                                                        AuditEvent.account_id == account_id)
                               .order_by(AuditEvent.at)))


def _binding_ids(svc, account_id: str) -> dict[str, CardBinding]:
    with svc.db.session() as db:
        return {b.serial: b for b in bindings_of(db, account_id)}


def _serial(card) -> str:
    return format(card.serial, "x")


def _password_works(app, student, password: str) -> bool:
    browser = Browser(app.test_client())
    response = browser.password_login(browser.c.get("/login"), Student(
        student.id, student.school_code, student.login_id, password))
    return response.status_code == 303


def _card_signed_in(app, svc, student, card=None, new_card=None) -> tuple[CardBrowser, object]:
    """A browser signed in with the student's (linked) card, on no app: the account page."""
    if card is None:
        card = new_card()
        bind_directly(svc, student, card)
    browser = CardBrowser(app.test_client())
    signed_in = browser.use_card(card)
    assert signed_in.status_code == 200, signed_in.get_json()
    assert signed_in.get_json()["redirect"] == "/account/"
    assert _session(browser)["acr"] == ACR_CARD
    return browser, card


def _post_new(browser: Browser, new: str = NEW_PASSWORD, repeat: str | None = None, *,
              csrf: str | None = None):
    if csrf is None:  # the page has no form when the card proof is missing: any page's
        csrf = csrf_of(browser.c.get("/account/password").get_data(as_text=True))
    return browser.c.post(PAGE, data={"csrf_token": csrf, "new": new,
                                      "repeat": new if repeat is None else repeat})


def _problem(response) -> str | None:
    found = re.search(r'id="card-password-problem" data-code="([^"]+)"',
                      response.get_data(as_text=True))
    return found.group(1) if found else None


# ----------------------------------------------------------------------------- the feature
def test_card_sign_in_then_a_new_password_without_the_old_one(crl_app, crl_svc, new_card,
                                                             student):
    browser, card = _card_signed_in(crl_app, crl_svc, student, new_card=new_card)
    before = _session(browser)
    cookie_before = browser.c.get_cookie("mynagate_session").value
    home = browser.c.get("/account/").get_data(as_text=True)
    assert 'id="card-password"' in home
    page = browser.c.get(PAGE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="card-password-form"' in html
    assert 'name="current"' not in html  # no old password asked
    assert "5分のあいだだけ" in html and 'id="card-password-help"' in html

    done = _post_new(browser)
    assert done.status_code == 303 and done.headers["Location"] == "/account/"
    assert "新しいパスワードを決めました" in browser.c.get("/account/").get_data(as_text=True)
    assert _password_works(crl_app, student, NEW_PASSWORD)
    assert not _password_works(crl_app, student, student.password)

    after = _session(browser)
    # Still the same card sign-in (time, card, sid), under a new session id (cookie).
    assert after["acr"] == ACR_CARD and after["auth_time"] == before["auth_time"]
    assert after["card_binding"] == before["card_binding"] and after["sid"] == before["sid"]
    assert browser.c.get_cookie("mynagate_session").value != cookie_before
    [event] = [e for e in _events(crl_svc, "account.password_set_by_card", student.id)
               if e.outcome == "ok"]
    assert event.actor == student.id
    assert event.details["binding_id"] == _binding_ids(crl_svc, student.id)[_serial(card)].id


def test_other_sessions_and_app_tokens_end(crl_app, crl_svc, new_card, student, rp):
    """Someone who knew the old password may be signed in elsewhere: that is often why the
    password is being set. Their session and every app token end; this browser goes on."""
    elsewhere = Browser(crl_app.test_client())
    query, verifier = elsewhere.sign_in_and_authorize(rp, student, scope="openid")
    assert redeem(elsewhere.c, rp, query["code"], verifier).status_code == 200
    assert elsewhere.c.get("/account/").status_code == 200

    browser, _ = _card_signed_in(crl_app, crl_svc, student, new_card=new_card)
    assert _post_new(browser).status_code == 303
    assert elsewhere.c.get("/account/").status_code == 303  # signed out
    assert browser.c.get("/account/").status_code == 200
    with crl_svc.db.session() as db:
        families = list(db.scalars(select(TokenFamily).where(
            TokenFamily.account_id == student.id)))
        tokens = list(db.scalars(select(TokenRow).where(TokenRow.account_id == student.id)))
    assert families and all(f.revoked_reason == "password_set_by_card" for f in families)
    assert tokens and all(t.revoked_at is not None for t in tokens)


@pytest.mark.parametrize("new, repeat, code_text", [
    ("short", "short", "8文字以上"),
    (NEW_PASSWORD, NEW_PASSWORD + "x", "2回とも同じ"),
    ("password", "password", "かんたんすぎて"),
])
def test_the_existing_password_policy_applies(crl_app, crl_svc, new_card, student, new,
                                              repeat, code_text):
    browser, _ = _card_signed_in(crl_app, crl_svc, student, new_card=new_card)
    refused = _post_new(browser, new, repeat)
    assert refused.status_code == 400 and code_text in refused.get_data(as_text=True)
    assert _password_works(crl_app, student, student.password)
    # A refused password spends nothing: the card sign-in may still set a good one.
    assert _post_new(browser).status_code == 303


def test_the_page_explains_itself_in_english(crl_app, crl_svc, new_card, student):
    browser, _ = _card_signed_in(crl_app, crl_svc, student, new_card=new_card)
    html = browser.c.get(PAGE + "?lang=en").get_data(as_text=True)
    assert "Choose a new password with your card" in html
    assert "within 5 minutes after you sign in with your card" in html
    classmate = Browser(crl_app.test_client())
    classmate.password_login(classmate.c.get("/login"), student)
    html = classmate.c.get(PAGE + "?lang=en").get_data(as_text=True)
    assert "only right after you sign in with your card" in html


# ----------------------------------------------------------------------------- abuse
def test_a_classmate_with_the_password_but_no_card_cannot(crl_app, crl_svc, new_card,
                                                         student):
    bind_directly(crl_svc, student, new_card())
    classmate = Browser(crl_app.test_client())
    assert classmate.password_login(classmate.c.get("/login"), student).status_code == 303
    home = classmate.c.get("/account/").get_data(as_text=True)
    assert 'id="card-password"' not in home and 'id="card-password-hint"' in home
    page = classmate.c.get(PAGE)
    assert page.status_code == 200 and _problem(page) == "not_card"
    assert 'id="card-password-form"' not in page.get_data(as_text=True)
    # The form posted anyway (its CSRF token taken from another page of the same session).
    csrf = csrf_of(classmate.c.get("/account/password").get_data(as_text=True))
    refused = _post_new(classmate, csrf=csrf)
    assert refused.status_code == 403 and _problem(refused) == "not_card"
    assert _password_works(crl_app, student, student.password)
    [event] = _events(crl_svc, "account.password_set_by_card", student.id)
    assert event.outcome == "refused" and event.details["reason"] == "not_card"


def test_a_card_sign_in_older_than_the_window_cannot(crl_app, crl_svc, new_card, student):
    browser, _ = _card_signed_in(crl_app, crl_svc, student, new_card=new_card)
    csrf = csrf_of(browser.c.get(PAGE).get_data(as_text=True))
    with browser.c.session_transaction() as session:
        session["auth_time"] = session["auth_time"] - CARD_RECOVERY_WINDOW - 1
    assert _problem(browser.c.get(PAGE)) == "stale"
    assert 'id="card-password"' not in browser.c.get("/account/").get_data(as_text=True)
    refused = _post_new(browser, csrf=csrf)
    assert refused.status_code == 403 and _problem(refused) == "stale"
    assert _password_works(crl_app, student, student.password)


def test_a_replayed_form_sets_nothing_more(crl_app, crl_svc, new_card, student):
    """One card sign-in, one new password: the same form posted again (same CSRF token,
    within the five minutes) is refused, and so is a fresh page of the same sign-in."""
    browser, card = _card_signed_in(crl_app, crl_svc, student, new_card=new_card)
    csrf = csrf_of(browser.c.get(PAGE).get_data(as_text=True))
    assert _post_new(browser, csrf=csrf).status_code == 303
    replayed = _post_new(browser, "another sentence 99", csrf=csrf)
    assert replayed.status_code == 403 and _problem(replayed) == "spent"
    assert _problem(browser.c.get(PAGE)) == "spent"
    assert _password_works(crl_app, student, NEW_PASSWORD)
    # Another browser replaying the request: the CSRF token is not its session's.
    stranger = CardBrowser(crl_app.test_client())
    posted = stranger.c.post(PAGE, data={"csrf_token": csrf, "new": "x" * 20,
                                         "repeat": "x" * 20})
    assert posted.status_code in (303, 400)
    assert _password_works(crl_app, student, NEW_PASSWORD)
    # A new card sign-in may set a password again.
    again, _ = _card_signed_in(crl_app, crl_svc, student, card=card)
    assert _post_new(again, "a third long sentence").status_code == 303


def test_without_csrf_nothing_changes(crl_app, crl_svc, new_card, student):
    browser, _ = _card_signed_in(crl_app, crl_svc, student, new_card=new_card)
    for csrf in ("", "forged"):
        posted = browser.c.post(PAGE, data={"csrf_token": csrf, "new": NEW_PASSWORD,
                                            "repeat": NEW_PASSWORD})
        assert posted.status_code == 400
    assert _password_works(crl_app, student, student.password)
    assert _post_new(browser).status_code == 303  # the sign-in was not spent by junk


def test_a_card_not_linked_to_the_account_proves_nothing(crl_app, crl_svc, new_card,
                                                         make_student):
    owner, other = make_student(), make_student()
    stranger_card = new_card()
    # An unlinked card signs nobody in: the page sends the visitor to sign in.
    browser = CardBrowser(crl_app.test_client())
    assert error_of(browser.use_card(stranger_card)) == "card_not_linked"
    assert browser.c.get(PAGE).status_code == 303
    # A session whose recorded binding is another account's card (a tampered or mixed-up
    # session record) proves nothing for this account.
    bind_directly(crl_svc, other, stranger_card)
    signed_in, _ = _card_signed_in(crl_app, crl_svc, owner, new_card=new_card)
    with signed_in.c.session_transaction() as session:
        session["card_binding"] = _binding_ids(crl_svc, other.id)[_serial(stranger_card)].id
    refused = _post_new(signed_in)
    assert refused.status_code == 403 and _problem(refused) == "card_gone"
    for junk in (None, "x" * 500, 42):
        with signed_in.c.session_transaction() as session:
            session["card_binding"] = junk
        assert _problem(signed_in.c.get(PAGE)) == "card_gone"
    assert _password_works(crl_app, owner, owner.password)


def test_a_card_revoked_after_the_sign_in_cannot(crl_app, crl_svc, new_card, student):
    from idp.accounts.cards import revoke_binding

    browser, card = _card_signed_in(crl_app, crl_svc, student, new_card=new_card)
    csrf = csrf_of(browser.c.get(PAGE).get_data(as_text=True))
    binding_id = _binding_ids(crl_svc, student.id)[_serial(card)].id
    with crl_svc.db.session() as db:
        revoke_binding(db, binding_id, actor="test", reason="lost")
    refused = _post_new(browser, csrf=csrf)
    assert refused.status_code == 403 and _problem(refused) == "card_gone"
    assert error_of(CardBrowser(crl_app.test_client()).use_card(card)) == \
        "certificate_revoked"


def test_an_admins_card_linked_without_totp_cannot(crl_app, crl_svc, new_card, school):
    from tests.admin.conftest import _make_account

    admin = _make_account(crl_svc, school, "school_admin")
    card = new_card()
    bind_directly(crl_svc, admin, card)
    browser, _ = _card_signed_in(crl_app, crl_svc, admin, card=card)
    assert _problem(browser.c.get(PAGE)) == "admin_card_without_totp"
    refused = _post_new(browser)
    assert refused.status_code == 403 and _problem(refused) == "admin_card_without_totp"


def test_the_throttle_applies(crl_app, crl_svc, new_card, student):
    from idp.signin.throttle import ACCOUNT_POLICY

    bind_directly(crl_svc, student, new_card())
    classmate = Browser(crl_app.test_client())
    classmate.password_login(classmate.c.get("/login"), student)
    csrf = csrf_of(classmate.c.get("/account/password").get_data(as_text=True))
    statuses = [_post_new(classmate, csrf=csrf).status_code
                for _ in range(ACCOUNT_POLICY.free_failures + 2)]
    assert statuses[0] == 403 and statuses[-1] == 429, statuses


def test_junk_never_gives_a_500(crl_app, crl_svc, new_card, student):
    browser, _ = _card_signed_in(crl_app, crl_svc, student, new_card=new_card)
    csrf = csrf_of(browser.c.get(PAGE).get_data(as_text=True))
    for data in ({"csrf_token": csrf}, {"csrf_token": csrf, "new": "y" * 5000, "repeat": "y"},
                 {"csrf_token": csrf, "new": "\x00" * 10, "repeat": "\x00" * 10},
                 {"csrf_token": csrf, "new": ["a" * 10, "b" * 10], "repeat": "a" * 10}):
        response = browser.c.post(PAGE, data=data)
        assert 400 <= response.status_code < 500, response.status_code
    with browser.c.session_transaction() as session:
        session["auth_time"] = 10 ** 12  # a sign-in "in the future" is no proof either
    assert _problem(browser.c.get(PAGE)) == "stale"
    assert _password_works(crl_app, student, student.password)


# ----------------------------------------------------------------------------- renewal
def test_a_renewed_card_linked_with_the_password_replaces_the_old_one(
        crl_app, crl_svc, new_card, student, rp, school):
    old, renewed = new_card(), new_card()
    bind_directly(crl_svc, student, old)
    browser = CardBrowser(crl_app.test_client())
    txn, _ = browser.start_authorization(rp)
    browser.password_after_card(browser.use_card(renewed, txn), student, rp)
    rows = _binding_ids(crl_svc, student.id)
    old_row, new_row = rows[_serial(old)], rows[_serial(renewed)]
    assert old_row.status == "replaced" and old_row.replaced_by_id == new_row.id
    assert old_row.replaced_at is not None and new_row.status == "active"
    [replaced] = _events(crl_svc, "card.replaced", student.id)
    assert replaced.details["binding_id"] == old_row.id
    assert replaced.details["replaced_by"] == new_row.id

    # The old certificate never signs in again, with a message saying why.
    refused = CardBrowser(crl_app.test_client()).use_card(old)
    assert refused.status_code == 403 and error_of(refused) == "card_replaced"
    assert "新しいカードでサインインしてね" in refused.get_json()["error_description"]
    assert _events(crl_svc, "login.card", student.id)[-1].details["reason"] == \
        "binding_replaced"
    # The renewed one does.
    assert CardBrowser(crl_app.test_client()).use_card(renewed).status_code == 200

    # The student's page: replaced, with the date and a link to the new card.
    page = browser.c.get("/account/").get_data(as_text=True)
    assert f'<tr id="card-{old_row.id}">' in page and 'class="card-replaced"' in page
    assert f'href="#card-{new_row.id}"' in page
    assert 'id="several-cards"' not in page
    english = browser.c.get("/account/?lang=en").get_data(as_text=True)
    assert "Replaced by a new card (" in english and "This card does not work any more" in english
    browser.c.get("/account/?lang=ja")

    # The admin's card list and the API say the same.
    from tests.admin.conftest import _make_account, admin_sign_in, api_token_for

    admin = _make_account(crl_svc, school, "school_admin")
    staff = crl_app.test_client()
    admin_sign_in(staff, admin)
    admin_page = staff.get(f"/admin/accounts/{student.id}").get_data(as_text=True)
    assert f'id="card-status-{old_row.id}">交換済み' in admin_page
    assert f'href="#card-{new_row.id}"' in admin_page
    assert f'card-revoke-{old_row.id}"' not in admin_page  # nothing left to revoke
    token = api_token_for(crl_svc, admin.id)
    body = crl_app.test_client().get(f"/api/admin/accounts/{student.id}", headers={
        "Authorization": f"Bearer {token}"}).get_json()
    cards = {c["id"]: c for c in body["cards"]}
    assert cards[old_row.id]["status"] == "replaced"
    assert cards[old_row.id]["replaced_by"] == new_row.id and cards[old_row.id]["replaced_at"]
    assert cards[new_row.id]["status"] == "active" and cards[new_row.id]["replaced_by"] is None


def test_a_session_of_the_replaced_card_cannot_set_a_password(crl_app, crl_svc, new_card,
                                                              student):
    browser, old = _card_signed_in(crl_app, crl_svc, student, new_card=new_card)
    bind_directly(crl_svc, student, new_card())  # renewed meanwhile
    refused = _post_new(browser)
    assert refused.status_code == 403 and _problem(refused) == "card_gone"


def test_the_school_links_a_renewed_card_and_the_old_one_is_replaced(
        crl_app, crl_svc, new_card, make_student, school):
    from tests.admin.conftest import _make_account, admin_sign_in, own_ip
    from tests.admin.test_assisted_linking import confirm, tap

    student = make_student()
    old, renewed = new_card(), new_card()
    bind_directly(crl_svc, student, old)
    teacher = _make_account(crl_svc, school, "teacher")
    c = own_ip(crl_app.test_client())
    admin_sign_in(c, teacher)
    answer = tap(c, student.id, renewed)
    assert answer.status_code == 200, answer.get_json()
    page = c.get(answer.get_json()["redirect"]).get_data(as_text=True)
    assert 'id="link-replaces"' in page  # the teacher is told before pressing つなぐ
    assert confirm(c, student.id, csrf_of(page)).status_code == 303
    rows = _binding_ids(crl_svc, student.id)
    assert rows[_serial(old)].status == "replaced"
    assert rows[_serial(old)].replaced_by_id == rows[_serial(renewed)].id
    [bound] = [e for e in _events(crl_svc, "card.bound", student.id)
               if e.details.get("assisted_by")]
    assert bound.details["replaced"] == [rows[_serial(old)].id]
    # The new card tapped again: already linked, nothing changes.
    again = tap(c, student.id, renewed)
    assert again.status_code == 409 and again.get_json()["error"] == "already_linked"


def test_a_card_knocked_out_by_a_classmates_card_is_put_back_only_by_the_school(
        crl_app, crl_svc, new_card, make_student, school):
    """Abuse: a classmate who knows the password links their own card, so the student's
    real card becomes replaced. The student cannot re-link it with the password (that would
    let anyone with the password undo a renewal); the school, in person, can."""
    from tests.admin.conftest import _make_account, admin_sign_in, own_ip
    from tests.admin.test_assisted_linking import confirm, tap

    student = make_student()
    real, classmates = new_card(), new_card()
    bind_directly(crl_svc, student, real)
    bind_directly(crl_svc, student, classmates)  # linked with the known password
    assert error_of(CardBrowser(crl_app.test_client()).use_card(real)) == "card_replaced"
    # The password ceremony cannot bring it back: the replaced card is refused at the tap.
    retry = CardBrowser(crl_app.test_client())
    assert error_of(retry.use_card(real)) == "card_replaced"
    assert linking_pending(retry) is None

    teacher = _make_account(crl_svc, school, "teacher")
    c = own_ip(crl_app.test_client())
    admin_sign_in(c, teacher)
    answer = tap(c, student.id, real)
    assert answer.status_code == 200, answer.get_json()
    page = c.get(answer.get_json()["redirect"]).get_data(as_text=True)
    assert 'id="link-reinstates"' in page and 'id="link-replaces"' in page
    assert confirm(c, student.id, csrf_of(page)).status_code == 303
    rows = _binding_ids(crl_svc, student.id)
    assert rows[_serial(real)].status == "active" and rows[_serial(real)].replaced_by_id is None
    assert rows[_serial(classmates)].status == "replaced"
    assert rows[_serial(classmates)].replaced_by_id == rows[_serial(real)].id
    [event] = _events(crl_svc, "card.reinstated", student.id)
    assert event.actor == teacher.id and event.details["assisted_by"] == teacher.id
    assert event.details["replaced"] == [rows[_serial(classmates)].id]
    assert CardBrowser(crl_app.test_client()).use_card(real).status_code == 200
    assert error_of(CardBrowser(crl_app.test_client()).use_card(classmates)) == \
        "card_replaced"


def test_putting_a_card_back_ends_the_interlopers_sessions_and_app_tokens(
        crl_app, crl_svc, new_card, make_student, school, rp):
    """Abuse: the classmate who linked their own card signed in with it (and to an app)
    before the school put the real card back. The reinstatement is the school's answer to
    "someone else got in": their browser session and the apps' tokens end with it, as a
    revoked card's do (the old card stops at the next sign-in, a session it made did not)."""
    from tests.admin.conftest import _make_account, admin_sign_in, own_ip
    from tests.admin.test_assisted_linking import confirm, tap

    student = make_student()
    real, classmates = new_card(), new_card()
    bind_directly(crl_svc, student, real)
    bind_directly(crl_svc, student, classmates)
    interloper = CardBrowser(crl_app.test_client())
    assert interloper.use_card(classmates).status_code == 200
    assert interloper.c.get("/account/").status_code == 200
    app_user = Browser(crl_app.test_client())
    query, verifier = app_user.sign_in_and_authorize(rp, student, scope="openid")
    assert redeem(app_user.c, rp, query["code"], verifier).status_code == 200

    teacher = _make_account(crl_svc, school, "teacher")
    c = own_ip(crl_app.test_client())
    admin_sign_in(c, teacher)
    answer = tap(c, student.id, real)
    page = c.get(answer.get_json()["redirect"]).get_data(as_text=True)
    assert confirm(c, student.id, csrf_of(page)).status_code == 303

    assert interloper.c.get("/account/").status_code == 303  # signed out
    with crl_svc.db.session() as db:
        families = list(db.scalars(select(TokenFamily).where(
            TokenFamily.account_id == student.id)))
    assert families and all(f.revoked_reason == "card_reinstated" for f in families)
    assert c.get("/admin/link-card").status_code == 200  # the teacher's session goes on


def linking_pending(browser: CardBrowser):
    with browser.c.session_transaction() as session:
        return session.get("pending_card")


def test_an_expired_or_revoked_binding_is_not_marked_replaced(crl_app, crl_svc, new_card,
                                                              student):
    """Only a card that still signs in is replaced; a revoked one keeps its own story."""
    from idp.accounts.cards import revoke_binding

    lost, renewed = new_card(), new_card()
    bind_directly(crl_svc, student, lost)
    with crl_svc.db.session() as db:
        revoke_binding(db, _binding_ids(crl_svc, student.id)[_serial(lost)].id, actor="test")
    bind_directly(crl_svc, student, renewed)
    rows = _binding_ids(crl_svc, student.id)
    assert rows[_serial(lost)].status == "revoked" and rows[_serial(lost)].replaced_by_id is None
    assert rows[_serial(renewed)].status == "active"


def test_binding_a_replaced_card_again_is_refused_and_audited(crl_svc, new_card, student):
    """The rule under both ceremonies: a replaced binding never becomes active again (that
    would silently undo the renewal), whoever asks."""
    from datetime import UTC

    from idp.accounts.cards import CardIdentity, bind_card
    from idp.jpki.errors import CardError
    from idp.jpki.trust import certificate_sha256
    from idp.store.models import Account

    old, renewed = new_card(), new_card()
    for card in (old, renewed):
        bind_directly(crl_svc, student, card)
    identity = CardIdentity(old.certificate.issuer.rfc4514_string(), _serial(old),
                            certificate_sha256(old.certificate),
                            old.certificate.not_valid_after_utc.astimezone(UTC)
                            .replace(tzinfo=None))
    with crl_svc.db.session() as db, pytest.raises(CardError) as refused:
        bind_card(db, db.get(Account, student.id), identity, ip="test")
    assert refused.value.code == "card_replaced"
    assert _binding_ids(crl_svc, student.id)[_serial(old)].status == "replaced"
    assert _binding_ids(crl_svc, student.id)[_serial(renewed)].status == "active"
    assert any(e.details.get("reason") == "binding_replaced" and e.outcome == "refused"
               for e in _events(crl_svc, "card.bind", student.id))


def test_two_forms_passing_the_check_at_the_same_moment_set_one_password(
        crl_app, crl_svc, new_card, student, monkeypatch):
    """The race a session flag cannot stop: both requests passed the proof check before
    either finished. The claim in the shared store lets one of them through."""
    from idp.account import my_page

    browser, _ = _card_signed_in(crl_app, crl_svc, student, new_card=new_card)
    csrf = csrf_of(browser.c.get(PAGE).get_data(as_text=True))
    first = _post_new(browser, csrf=csrf)
    assert first.status_code == 303
    # The second request "checked" before the first claimed: its proof check saw no claim.
    original = my_page.card_proof_problem

    def checked_too_early(db, store, *args, **kwargs):
        problem = original(db, store, *args, **kwargs)
        return None if problem == "spent" else problem

    monkeypatch.setattr(my_page, "card_proof_problem", checked_too_early)
    second = _post_new(browser, "the racing sentence 7", csrf=csrf)
    assert second.status_code == 403 and _problem(second) == "spent"
    assert _password_works(crl_app, student, NEW_PASSWORD)
