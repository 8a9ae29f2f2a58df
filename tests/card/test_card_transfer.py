"""A card-linked student moves school (issue 11): the same card signs in afterwards, and
every app gets the same pairwise ``sub`` with the new school in its claims."""

from __future__ import annotations

from idp.admin import transfers
from idp.store.models import Account, School
from tests.card.helpers import CardBrowser
from tests.card.test_card_flow import bind_directly, card_journey
from tests.conftest import unique


def test_the_card_signs_in_after_a_transfer_with_the_same_sub_and_the_new_school(
        crl_app, crl_svc, new_card, student, school, make_rp):
    math, kanji = make_rp(host="math.example.test"), make_rp(host="kanji.example.test")
    card = new_card()
    bind_directly(crl_svc, student, card)
    before = {rp.client_id: card_journey(CardBrowser(crl_app.test_client()), crl_svc, rp,
                                         card, scope="openid school")
              for rp in (math, kanji)}
    assert before[math.client_id]["school_code"] == school.code

    with crl_svc.db.session() as db:
        receiving = School(code=unique("card-to"), name="ひがし中学校")
        db.add(receiving)
        db.flush()
        transfers.move(crl_svc, db, db.get(Account, student.id), receiving, "hanako.card",
                       actor_id="test")

    after = {rp.client_id: card_journey(CardBrowser(crl_app.test_client()), crl_svc, rp,
                                        card, scope="openid school")
             for rp in (math, kanji)}
    for rp in (math, kanji):
        assert after[rp.client_id]["sub"] == before[rp.client_id]["sub"]
        assert after[rp.client_id]["school_code"] == receiving.code
        assert after[rp.client_id]["school_name"] == "ひがし中学校"
    assert before[math.client_id]["sub"] != before[kanji.client_id]["sub"]  # still pairwise
