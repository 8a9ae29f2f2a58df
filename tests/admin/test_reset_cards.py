"""Issue 8, password reset with cards: issuing a reset code shows, on the same page, the
account's linked cards (which keep signing in whatever the password) and unlinks the chosen
ones with the existing, audited revoke. The API answer lists them too."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.admin.conftest import admin_sign_in, form_token


def _reset(c, account_id: str):
    response = c.post(f"/admin/accounts/{account_id}/reset-code",
                      data={"csrf_token": form_token(c, f"/admin/accounts/{account_id}")})
    assert response.status_code == 303
    return response


def _status(svc, card_id: str) -> str:
    from idp.store.models import CardBinding

    with svc.db.session() as s:
        return s.get(CardBinding, card_id).status


def test_reset_page_shows_the_code_and_the_linked_cards_and_unlinks_the_chosen(
        app, svc, school_admin, make_account, card_for):
    from idp.store.models import AuditEvent

    student = make_account("student", totp=False)
    lost, kept = card_for(student.id), card_for(student.id)
    gone = card_for(student.id, status="revoked")
    c = app.test_client()
    admin_sign_in(c, school_admin)
    response = _reset(c, student.id)
    assert response.headers["Location"] == f"/admin/accounts/{student.id}/reset"
    page = c.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(r'id="shown-value" class="secret">[A-Z2-9]{4}-', page)  # the code
    assert f'value="{lost.id}"' in page and f'value="{kept.id}"' in page
    assert f'value="{gone.id}"' not in page  # already revoked: nothing to unlink
    done = c.post(f"/admin/accounts/{student.id}/unlink-cards",
                  data={"csrf_token": re.search(r'name="csrf_token" type="hidden" '
                                                r'value="([^"]+)"', page).group(1),
                        "card_ids": [lost.id]})
    assert done.status_code == 303
    assert _status(svc, lost.id) == "revoked" and _status(svc, kept.id) == "active"
    with svc.db.session() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.event == "card.revoked",
                                                  AuditEvent.account_id == student.id))
        assert event.actor == school_admin.id and event.details["card_id"] == lost.id


def test_an_account_without_cards_says_so(app, school_admin, make_account):
    student = make_account("student", totp=False)
    c = app.test_client()
    admin_sign_in(c, school_admin)
    page = c.get(_reset(c, student.id).headers["Location"]).get_data(as_text=True)
    assert 'id="reset-no-cards"' in page and 'id="unlink-cards-form"' not in page


def test_unlinking_only_this_accounts_cards_of_own_school(app, svc, school_admin,
                                                          make_account, card_for,
                                                          other_school):
    student, classmate = make_account("student", totp=False), make_account("student",
                                                                          totp=False)
    mine, theirs = card_for(student.id), card_for(classmate.id)
    far = make_account("student", in_school=other_school, totp=False)
    far_card = card_for(far.id)
    c = app.test_client()
    admin_sign_in(c, school_admin)
    csrf = form_token(c, f"/admin/accounts/{student.id}")
    # A classmate's card smuggled into this account's form: refused, nothing revoked.
    refused = c.post(f"/admin/accounts/{student.id}/unlink-cards",
                     data={"csrf_token": csrf, "card_ids": [mine.id, theirs.id]})
    assert refused.status_code == 400
    assert _status(svc, mine.id) == "active" and _status(svc, theirs.id) == "active"
    assert c.post(f"/admin/accounts/{student.id}/unlink-cards",
                  data={"csrf_token": csrf}).status_code == 400  # none chosen
    # Another school's account: neither the page nor the unlink.
    assert c.get(f"/admin/accounts/{far.id}/reset").status_code == 403
    assert c.post(f"/admin/accounts/{far.id}/unlink-cards",
                  data={"csrf_token": csrf, "card_ids": [far_card.id]}).status_code == 403
    # Without the CSRF token (a hostile page posting from the admin's browser): refused.
    assert c.post(f"/admin/accounts/{student.id}/unlink-cards",
                  data={"card_ids": [mine.id]}).status_code == 400
    assert _status(svc, far_card.id) == "active" and _status(svc, mine.id) == "active"


def test_api_reset_lists_the_cards_that_still_sign_in(client, school_admin, make_account,
                                                     card_for, token_of):
    student = make_account("student", totp=False)
    active = card_for(student.id)
    card_for(student.id, status="revoked")
    body = client.post(f"/api/admin/accounts/{student.id}/reset-code",
                       headers=token_of(school_admin)).get_json()
    assert [c["id"] for c in body["linked_cards"]] == [active.id]
    assert body["linked_cards"][0]["status"] == "active"
