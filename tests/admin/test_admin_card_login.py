"""An admin signs in with a linked card from the admin sign-in page itself (issue 12).

The card stands in for password + TOTP only when it is an admin's card linked in a sign-in
that passed TOTP; a card linked without TOTP, a student's card, a teacher's card and an
unlinked card sign in nobody here."""

from __future__ import annotations

import html as htmllib
import re
from datetime import UTC

import pytest

from tests.card.helpers import make_token


def _bind(svc, account_id: str, card, *, with_mfa: bool) -> None:
    from idp.accounts.cards import CardIdentity, bind_card
    from idp.jpki.trust import certificate_sha256
    from idp.store.models import Account

    with svc.db.session() as db:
        bind_card(db, db.get(Account, account_id), CardIdentity(
            card.certificate.issuer.rfc4514_string(), format(card.serial, "x"),
            certificate_sha256(card.certificate),
            card.certificate.not_valid_after_utc.astimezone(UTC).replace(tzinfo=None)),
            ip="test", linked_with_mfa=with_mfa)


def _page(c, next_path: str | None = None) -> tuple[str, str, str]:
    page = c.get("/admin/login", query_string={"next": next_path} if next_path else None)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="admin-card"' in html
    csrf = re.search(r'data-csrf="([^"]+)"', html).group(1)
    challenge = htmllib.unescape(re.search(r'data-challenge-url="([^"]+)"', html).group(1))
    verify = htmllib.unescape(re.search(r'data-verify-url="([^"]+)"', html).group(1))
    return csrf, challenge, verify


def card_sign_in(c, card, next_path: str | None = None):
    """What card.js does on the admin sign-in page: challenge, the card signs, verify."""
    csrf, challenge_url, verify_url = _page(c, next_path)
    answer = c.post(challenge_url, headers={"X-CSRFToken": csrf}).get_json()
    return c.post(verify_url, json=make_token(card.der, card.key, answer["challenge"]),
                  headers={"X-CSRFToken": csrf})


@pytest.fixture
def crl_client(crl_app):
    return crl_app.test_client()


@pytest.fixture
def crl_svc(crl_app):
    return crl_app.extensions["mynagate"]


def test_an_admins_card_linked_under_totp_opens_the_admin_pages(crl_client, crl_svc,
                                                                make_account, new_card):
    admin = make_account("school_admin")
    card = new_card()
    _bind(crl_svc, admin.id, card, with_mfa=True)
    answer = card_sign_in(crl_client, card, next_path="/admin/audit")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["redirect"] == "/admin/audit"
    assert crl_client.get("/admin/").status_code == 200
    assert crl_client.get("/admin/audit").status_code == 200


def test_next_is_only_ever_an_admin_path(crl_client, crl_svc, make_account, new_card):
    admin = make_account("platform_admin")
    card = new_card()
    _bind(crl_svc, admin.id, card, with_mfa=True)
    csrf, challenge_url, _ = _page(crl_client)
    answer = crl_client.post(challenge_url, headers={"X-CSRFToken": csrf}).get_json()
    done = crl_client.post("/admin/login/card/verify?next=//evil.example/admin",
                           json=make_token(card.der, card.key, answer["challenge"]),
                           headers={"X-CSRFToken": csrf})
    assert done.status_code == 200 and done.get_json()["redirect"] == "/admin/"


def test_a_card_linked_without_totp_cannot(crl_client, crl_svc, make_account, new_card):
    admin = make_account("school_admin")
    card = new_card()
    _bind(crl_svc, admin.id, card, with_mfa=False)
    answer = card_sign_in(crl_client, card)
    assert answer.status_code == 403 and answer.get_json()["error"] == "card_without_mfa"
    assert answer.get_json()["error_description"]
    assert crl_client.get("/admin/").status_code == 303  # back to the sign-in
    from idp.store.models import AuditEvent

    with crl_svc.db.session() as s:
        refused = s.query(AuditEvent).filter_by(event="admin.login", account_id=admin.id,
                                                outcome="refused").one()
        assert refused.details["reason"] == "card_without_mfa"


@pytest.mark.parametrize("role", ["student", "teacher"])
def test_a_pupils_or_teachers_card_cannot_reach_admin(crl_client, crl_svc, make_account,
                                                      new_card, role):
    holder = make_account(role)
    card = new_card()
    _bind(crl_svc, holder.id, card, with_mfa=True)  # even marked as linked under TOTP
    answer = card_sign_in(crl_client, card)
    assert answer.status_code == 403 and answer.get_json()["error"] == "not_admin"
    assert crl_client.get("/admin/").status_code == 303
    with crl_client.session_transaction() as session:
        assert "account_id" not in session  # signed in to nothing, not even the student side


def test_an_unlinked_card_signs_in_nobody(crl_client, new_card):
    answer = card_sign_in(crl_client, new_card())
    assert answer.status_code == 403 and answer.get_json()["error"] == "card_not_linked"
    assert "redirect" not in answer.get_json()  # no linking offered from the admin page
    with crl_client.session_transaction() as session:
        assert "account_id" not in session and "pending_card" not in session


def test_a_student_pages_challenge_is_not_the_admin_pages(crl_client, crl_svc, make_account,
                                                         new_card):
    admin = make_account("school_admin")
    card = new_card()
    _bind(crl_svc, admin.id, card, with_mfa=True)
    csrf, _, verify_url = _page(crl_client)
    student_page = crl_client.get("/login/card").get_data(as_text=True)
    student_csrf = re.search(r'data-csrf="([^"]+)"', student_page).group(1)
    answer = crl_client.post("/login/card/challenge",
                             headers={"X-CSRFToken": student_csrf}).get_json()
    refused = crl_client.post(verify_url, json=make_token(card.der, card.key,
                                                          answer["challenge"]),
                              headers={"X-CSRFToken": csrf})
    assert refused.status_code == 400 and refused.get_json()["error"] == "challenge_not_found"
    assert crl_client.get("/admin/").status_code == 303


def test_csrf_is_required(crl_client, crl_svc, make_account, new_card):
    admin = make_account("school_admin")
    card = new_card()
    _bind(crl_svc, admin.id, card, with_mfa=True)
    csrf, challenge_url, verify_url = _page(crl_client)
    assert crl_client.post(challenge_url).status_code == 400
    answer = crl_client.post(challenge_url, headers={"X-CSRFToken": csrf}).get_json()
    refused = crl_client.post(verify_url, json=make_token(card.der, card.key,
                                                          answer["challenge"]))
    assert refused.status_code == 400
    assert crl_client.get("/admin/").status_code == 303


def test_no_card_section_when_cards_are_off(app):
    html = app.test_client().get("/admin/login").get_data(as_text=True)
    assert ('id="admin-card"' in html) == app.extensions["mynagate"].card.enabled
