"""The admin home counts each sign-in once (issue 12).

An admin's card sign-in on the admin page writes two events: ``login.card`` (the card check:
which account the card belongs to) and ``admin.login`` (the sign-in: the admin checks passed
or not). The home counted both, so one tap showed as two sign-ins; a teacher's card tapped
there showed as a card sign-in although it signed in nobody. ``admin.login`` is the sign-in
(idp.admin.dashboard); these tests go through the real pages and read the home's figures.
"""

from __future__ import annotations

import re

import pytest

from idp.accounts.roles import Actor
from idp.admin import dashboard
from tests.admin.conftest import admin_sign_in
from tests.admin.test_admin_card_login import _bind, card_sign_in


def _board(svc, actor: Actor) -> dashboard.Dashboard:
    svc.events.flush()  # as the home page does: card sign-ins go through the event log
    with svc.db.session() as db:
        return dashboard.dashboard(db, actor)


def _shown_totals(html: str) -> dict[str, int]:
    """The numbers next to each method on the home page, as a person reads them."""
    return {method: int(re.search(rf'id="total-{method}">.*?<strong>(\d+)回</strong>',
                                  html).group(1)) for method in dashboard.METHODS}


def test_an_admins_card_sign_in_counts_once(crl_app, new_school, make_account, new_card):
    school = new_school("カード小学校")
    admin = make_account("school_admin", in_school=school)
    card = new_card()
    _bind(crl_app.extensions["mynagate"], admin.id, card, with_mfa=True)
    client = crl_app.test_client()
    assert card_sign_in(client, card).status_code == 200
    home = client.get("/admin/")
    assert home.status_code == 200
    # One tap, one sign-in: under the admin page's sign-ins, not also as a pupil's card one.
    assert _shown_totals(home.get_data(as_text=True)) == {"password": 0, "card": 0, "admin": 1}
    board = _board(crl_app.extensions["mynagate"], Actor(admin.id, "school_admin", school.id))
    assert sum(map(sum, board.by_hour.values())) == 1
    assert board.refusals == []


def test_an_admins_password_and_totp_sign_in_counts_once(app, svc, new_school, make_account):
    school = new_school("パスワード小学校")
    admin = make_account("school_admin", in_school=school)
    client = app.test_client()
    admin_sign_in(client, admin)
    html = client.get("/admin/").get_data(as_text=True)
    assert _shown_totals(html) == {"password": 0, "card": 0, "admin": 1}


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_a_card_refused_at_the_admin_page_is_one_refusal_and_no_sign_in(
        crl_app, new_school, make_account, new_card, role):
    school = new_school("ことわり小学校")
    admin = make_account("school_admin", in_school=school)
    holder = make_account(role, in_school=school)
    card = new_card()
    svc = crl_app.extensions["mynagate"]
    _bind(svc, holder.id, card, with_mfa=True)
    assert card_sign_in(crl_app.test_client(), card).status_code == 403
    board = _board(svc, Actor(admin.id, "school_admin", school.id))
    assert board.totals == {"password": 0, "card": 0, "admin": 0}
    assert board.refusals == [("admin.login", "not_admin", 1)]


def test_an_unlinked_card_at_the_admin_page_is_one_refusal(crl_app, make_account, new_card):
    platform = make_account("platform_admin")
    svc = crl_app.extensions["mynagate"]
    actor = Actor(platform.id, "platform_admin", platform.school_id)

    def unlinked() -> int:
        refusals = {(event, why): n for event, why, n in _board(svc, actor).refusals}
        return refusals.get(("admin.login", "card_not_linked"), 0) + \
            refusals.get(("login.card", "not_linked"), 0)

    before = unlinked()
    assert card_sign_in(crl_app.test_client(), new_card()).status_code == 403
    assert unlinked() == before + 1


def test_a_revoked_card_at_the_admin_page_is_still_one_refusal(crl_app, new_school,
                                                             make_account, new_card):
    """The card check refuses it before any admin check, so its ``login.card`` refusal is
    the only record of the attempt, and it stays on the home page."""
    from idp.store.models import CardBinding

    school = new_school("失効小学校")
    admin = make_account("school_admin", in_school=school)
    card = new_card()
    svc = crl_app.extensions["mynagate"]
    _bind(svc, admin.id, card, with_mfa=True)
    with svc.db.session() as db:
        db.query(CardBinding).filter_by(account_id=admin.id).update({"status": "revoked"})
    assert card_sign_in(crl_app.test_client(), card).status_code == 403
    board = _board(svc, Actor(admin.id, "school_admin", school.id))
    assert board.refusals == [("login.card", "binding_revoked", 1)]
    assert board.totals == {"password": 0, "card": 0, "admin": 0}


def test_a_pupils_card_sign_in_on_the_pupils_page_still_counts(crl_app, new_school,
                                                              make_account, new_card):
    """The events the admin page leaves out are only its own: the pupils' page's card
    sign-in is still a card sign-in."""
    from tests.card.helpers import make_token

    school = new_school("児童小学校")
    admin = make_account("school_admin", in_school=school)
    pupil = make_account("student", in_school=school)
    card = new_card()
    svc = crl_app.extensions["mynagate"]
    _bind(svc, pupil.id, card, with_mfa=False)
    client = crl_app.test_client()
    page = client.get("/login/card").get_data(as_text=True)
    csrf = re.search(r'data-csrf="([^"]+)"', page).group(1)
    answer = client.post("/login/card/challenge", headers={"X-CSRFToken": csrf}).get_json()
    done = client.post("/login/card/verify", json=make_token(card.der, card.key,
                                                             answer["challenge"]),
                       headers={"X-CSRFToken": csrf})
    assert done.status_code == 200, done.get_json()
    board = _board(svc, Actor(admin.id, "school_admin", school.id))
    assert board.totals == {"password": 0, "card": 1, "admin": 0}
