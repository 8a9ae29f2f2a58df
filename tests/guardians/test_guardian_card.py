"""A guardian signs in with their own card, on the same path as a student: password once to
link it, then the card alone, and reaches their page."""

from __future__ import annotations

import secrets

from tests.conftest import Student, unique


def test_guardian_links_a_card_and_signs_in_with_it(crl_app, card_browser, new_card):
    from idp.signin.passwords import hash_password
    from idp.store.models import Account, GuardianLink, School

    svc = crl_app.extensions["mynagate"]
    password = "guardian passphrase " + secrets.token_hex(2)
    with svc.db.session() as s:
        school = School(code=unique("gcard"), name="カード小学校")
        s.add(school)
        s.flush()
        adult = Account(school_id=school.id, login_id=unique("grd"), role="guardian",
                        display_name="カード 保護者", password_hash=hash_password(password))
        child = Account(school_id=school.id, login_id=unique("stu"), display_name="カード 子")
        s.add_all([adult, child])
        s.flush()
        s.add(GuardianLink(guardian_id=adult.id, child_id=child.id, created_by="test"))
    person = Student(adult.id, school.code, adult.login_id, password)
    card = new_card()
    linked = card_browser.link_after_card(card_browser.use_card(card), person)
    assert linked.status_code == 303, linked.get_data(as_text=True)[:300]
    card_browser.c.get("/logout")
    fresh = crl_app.test_client()
    from tests.card.helpers import CardBrowser

    again = CardBrowser(fresh).use_card(card)
    assert again.status_code == 200, again.get_json()
    page = fresh.get("/account/children/")
    assert page.status_code == 200 and f'id="child-{child.id}"' in page.get_data(as_text=True)
