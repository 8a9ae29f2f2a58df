"""Issue 8, roles: a school admin acts only on student and teacher accounts of their own
school — never on another admin (school or platform), whatever the action, in the pages and
in the API. The rule is :func:`idp.accounts.roles.may_act_on`, used by every account action."""

from __future__ import annotations

import pytest

from tests.admin.conftest import admin_sign_in, form_token

# (API method, path template, page path template or None); {id} is the target account,
# {card} a card of the target.
ACCOUNT_ACTIONS = {
    "read": ("GET", "/api/admin/accounts/{id}", None),
    "lock": ("POST", "/api/admin/accounts/{id}/lock", "/admin/accounts/{id}/lock"),
    "unlock": ("POST", "/api/admin/accounts/{id}/unlock", "/admin/accounts/{id}/unlock"),
    "end_sessions": ("POST", "/api/admin/accounts/{id}/end-sessions",
                     "/admin/accounts/{id}/end-sessions"),
    "reset_code": ("POST", "/api/admin/accounts/{id}/reset-code",
                   "/admin/accounts/{id}/reset-code"),
    "revoke_card": ("POST", "/api/admin/cards/{card}/revoke", "/admin/cards/{card}/revoke"),
}


def test_the_rule_itself():
    from idp.accounts.roles import Action, Actor, may_act_on

    school_admin = Actor("a", "school_admin", "s1")
    platform = Actor("p", "platform_admin", "s1")
    teacher = Actor("t", "teacher", "s1")
    for target in ("student", "teacher"):
        assert may_act_on(school_admin, Action.ACCOUNTS, target, "s1")
        assert not may_act_on(school_admin, Action.ACCOUNTS, target, "s2")
    for target in ("school_admin", "platform_admin", "nonsense"):
        assert not may_act_on(school_admin, Action.ACCOUNTS, target, "s1")
        assert not may_act_on(school_admin, Action.CARDS, target, "s1")
    assert may_act_on(platform, Action.ACCOUNTS, "school_admin", "s2")
    # A teacher links students' cards in their own school, and does nothing else.
    assert may_act_on(teacher, Action.LINK_CARDS, "student", "s1")
    assert not may_act_on(teacher, Action.LINK_CARDS, "teacher", "s1")
    assert not may_act_on(teacher, Action.LINK_CARDS, "student", "s2")
    assert not may_act_on(teacher, Action.ACCOUNTS, "student", "s1")
    assert not may_act_on(school_admin, Action.LINK_CARDS, "school_admin", "s1")


@pytest.mark.parametrize("target_role", ["school_admin", "platform_admin"])
@pytest.mark.parametrize("action", sorted(ACCOUNT_ACTIONS))
def test_school_admin_api_cannot_act_on_an_admin(client, make_account, token_of, card_for,
                                                 svc, action, target_role):
    from idp.store.models import Account, AuditEvent

    caller = make_account("school_admin")
    target = make_account(target_role)
    card = card_for(target.id)
    method, path, _ = ACCOUNT_ACTIONS[action]
    response = client.open(path.format(id=target.id, card=card.id), method=method,
                           headers=token_of(caller))
    assert response.status_code == 403, response.get_json()
    assert response.get_json()["error"] == "forbidden"
    with svc.db.session() as s:
        assert s.get(Account, target.id).locked is False
        assert s.query(AuditEvent).filter_by(actor=caller.id).count() == 0


@pytest.mark.parametrize("target_role", ["student", "teacher"])
@pytest.mark.parametrize("action", sorted(ACCOUNT_ACTIONS))
def test_school_admin_api_acts_on_students_and_teachers(client, make_account, token_of,
                                                        card_for, action, target_role):
    caller = make_account("school_admin")
    target = make_account(target_role, totp=False)
    card = card_for(target.id)
    method, path, _ = ACCOUNT_ACTIONS[action]
    response = client.open(path.format(id=target.id, card=card.id), method=method,
                           headers=token_of(caller))
    assert 200 <= response.status_code < 300, response.get_json()


@pytest.mark.parametrize("action", sorted(a for a, v in ACCOUNT_ACTIONS.items() if v[2]))
def test_school_admin_pages_cannot_act_on_another_school_admin(app, make_account, card_for,
                                                               svc, action):
    from idp.store.models import Account

    caller = make_account("school_admin")
    target = make_account("school_admin")
    card = card_for(target.id)
    browser = app.test_client()
    admin_sign_in(browser, caller)
    assert browser.get(f"/admin/accounts/{target.id}").status_code == 403
    token = form_token(browser, "/admin/")
    page_path = ACCOUNT_ACTIONS[action][2].format(id=target.id, card=card.id)
    assert browser.post(page_path, data={"csrf_token": token}).status_code == 403
    with svc.db.session() as s:
        assert s.get(Account, target.id).locked is False
        assert s.get(type(card), card.id).status == "active"


def test_platform_admin_still_manages_school_admins(client, make_account, token_of):
    caller = make_account("platform_admin")
    target = make_account("school_admin")
    response = client.post(f"/api/admin/accounts/{target.id}/lock", headers=token_of(caller))
    assert response.status_code == 200 and response.get_json()["locked"] is True


@pytest.mark.parametrize("role", ["school_admin", "platform_admin"])
def test_school_admin_cannot_create_admins_in_pages_or_api(app, client, make_account,
                                                           token_of, school, role):
    from tests.conftest import unique

    caller = make_account("school_admin")
    response = client.post("/api/admin/accounts", headers=token_of(caller), json={
        "school_code": school.code, "login_id": unique("adm"), "role": role})
    assert response.status_code == 403
    browser = app.test_client()
    admin_sign_in(browser, caller)
    html = browser.get("/admin/accounts/new").get_data(as_text=True)
    assert f'value="{role}"' not in html
    response = browser.post("/admin/accounts/new", data={
        "csrf_token": form_token(browser, "/admin/accounts/new"), "school": school.id,
        "login_id": unique("adm"), "role": role})
    assert response.status_code == 400  # not one of the offered choices: nothing made
