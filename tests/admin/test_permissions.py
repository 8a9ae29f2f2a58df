"""The role matrix, enforced on the server: each role × each admin action → allowed or 403.

Every action targets something in the caller's own school ("own") or in another school
("other"); a school admin may act only on its own school's accounts, cards, roster and audit
log, a platform admin on everything, a teacher or a student on nothing (even holding a token
made while they were an admin)."""

from __future__ import annotations

import pytest

ROLES = ("platform_admin", "school_admin", "teacher", "student")
P, S = {"platform_admin"}, {"platform_admin", "school_admin"}

# action → (roles allowed, request builder(ctx) → (method, path, kwargs))
ACTIONS = {
    "list_clients": (P, lambda c: ("GET", "/api/admin/clients", {})),
    "create_client": (P, lambda c: ("POST", "/api/admin/clients", {"json": {
        "client_name": "行列アプリ", "redirect_uris": ["https://matrix.example.test/cb"]}})),
    "disable_client": (P, lambda c: ("POST", f"/api/admin/clients/{c.rp}/disable", {})),
    "rotate_secret": (P, lambda c: ("POST", f"/api/admin/clients/{c.rp}/rotate-secret", {})),
    "issue_iat": (P, lambda c: ("POST", "/api/admin/initial-access-tokens", {"json": {}})),
    "create_school": (P, lambda c: ("POST", "/api/admin/schools", {"json": {
        "code": c.new_code, "name": "新しい学校"}})),
    "set_retention": (P, lambda c: ("PUT", "/api/admin/settings/audit-retention",
                                    {"json": {"days": 400}})),
    "list_accounts_own": (S, lambda c: ("GET", "/api/admin/accounts", {})),
    "list_accounts_other": (P, lambda c: (
        "GET", f"/api/admin/accounts?school_code={c.other_code}", {})),
    "read_account_own": (S, lambda c: ("GET", f"/api/admin/accounts/{c.own}", {})),
    "read_account_other": (P, lambda c: ("GET", f"/api/admin/accounts/{c.other}", {})),
    "lock_own": (S, lambda c: ("POST", f"/api/admin/accounts/{c.own}/lock", {})),
    "lock_other": (P, lambda c: ("POST", f"/api/admin/accounts/{c.other}/lock", {})),
    "end_sessions_own": (S, lambda c: ("POST", f"/api/admin/accounts/{c.own}/end-sessions",
                                       {})),
    "reset_code_own": (S, lambda c: ("POST", f"/api/admin/accounts/{c.own}/reset-code", {})),
    "reset_code_other": (P, lambda c: ("POST", f"/api/admin/accounts/{c.other}/reset-code",
                                       {})),
    "revoke_card_own": (S, lambda c: ("POST", f"/api/admin/cards/{c.own_card}/revoke", {})),
    "revoke_card_other": (P, lambda c: ("POST", f"/api/admin/cards/{c.other_card}/revoke",
                                        {})),
    "audit_own": (S, lambda c: ("GET", "/api/admin/audit", {})),
    "audit_other": (P, lambda c: ("GET", f"/api/admin/audit?school_code={c.other_code}", {})),
    "roster_preview_own": (S, lambda c: ("POST", "/api/admin/roster/preview", {
        "data": f"学校コード,ログインID,氏名,学年,組,役割\n{c.own_code},m-1,行列 一郎,1,1,児童\n"
        .encode(), "content_type": "text/csv"})),
    "create_student_own": (S, lambda c: ("POST", "/api/admin/accounts", {"json": {
        "school_code": c.own_code, "login_id": c.new_login, "role": "student"}})),
    "create_admin_own": (P, lambda c: ("POST", "/api/admin/accounts", {"json": {
        "school_code": c.own_code, "login_id": c.new_login, "role": "school_admin"}})),
}


class Ctx:
    pass


@pytest.fixture
def ctx(make_account, make_rp, other_school, school, card_for):
    from tests.conftest import unique

    c = Ctx()
    c.rp = make_rp().client_id
    c.own = make_account("student", totp=False).id
    c.other = make_account("student", in_school=other_school, totp=False).id
    c.own_card = card_for(c.own).id
    c.other_card = card_for(c.other).id
    c.own_code, c.other_code = school.code, other_school.code
    c.new_code, c.new_login = unique("sch"), unique("new")
    return c


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("role", ROLES)
def test_api_permission_matrix(client, make_account, token_of, ctx, role, action):
    allowed, build = ACTIONS[action]
    caller = make_account(role)
    method, path, kwargs = build(ctx)
    response = client.open(path, method=method, headers=token_of(caller), **kwargs)
    if role in allowed:
        assert 200 <= response.status_code < 300, (response.status_code,
                                                   response.get_json())
    else:
        assert response.status_code == 403, (response.status_code, response.get_data()[:300])
        assert response.get_json()["error"] == "forbidden"


def test_forbidden_actions_change_nothing(client, make_account, token_of, ctx, svc):
    from idp.store.models import Account, AuditEvent

    caller = make_account("school_admin")
    response = client.post(f"/api/admin/accounts/{ctx.other}/lock", headers=token_of(caller))
    assert response.status_code == 403
    with svc.db.session() as s:
        assert s.get(Account, ctx.other).locked is False
        assert s.query(AuditEvent).filter_by(actor=caller.id).count() == 0


def test_school_admin_lists_only_own_school(client, make_account, token_of, ctx):
    caller = make_account("school_admin")
    body = client.get("/api/admin/accounts?limit=500", headers=token_of(caller)).get_json()
    ids = {a["id"] for a in body["accounts"]}
    assert ctx.own in ids and ctx.other not in ids


def test_school_admin_cannot_touch_platform_admin_in_own_school(client, make_account,
                                                                token_of):
    caller = make_account("school_admin")
    target = make_account("platform_admin")
    response = client.post(f"/api/admin/accounts/{target.id}/lock", headers=token_of(caller))
    assert response.status_code == 403


def test_no_token_bad_token_and_demoted_admin(client, make_account, token_of, svc):
    from idp.store.models import Account

    assert client.get("/api/admin/clients").status_code == 401
    bad = client.get("/api/admin/clients", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.get_json()["error"] == "invalid_token"
    admin = make_account("platform_admin")
    headers = token_of(admin)
    assert client.get("/api/admin/clients", headers=headers).status_code == 200
    with svc.db.session() as s:
        s.get(Account, admin.id).role = "teacher"
    assert client.get("/api/admin/clients", headers=headers).status_code == 403
    with svc.db.session() as s:
        row = s.get(Account, admin.id)
        row.role, row.locked = "platform_admin", True
    assert client.get("/api/admin/clients", headers=headers).status_code == 401


# ----------------------------------------------------------------------------- web pages
WEB = {
    "/admin/clients": P,
    "/admin/initial-access-tokens": P,
    "/admin/accounts": S,
    "/admin/audit": S,
    "/admin/roster": S,
    "/admin/schools": S,
}


@pytest.mark.parametrize("path", sorted(WEB))
@pytest.mark.parametrize("role", ["platform_admin", "school_admin"])
def test_web_permission_matrix_admins(app, make_account, role, path):
    from tests.admin.conftest import admin_sign_in

    browser = app.test_client()
    admin_sign_in(browser, make_account(role))
    status = browser.get(path).status_code
    assert status == (200 if role in WEB[path] else 403)


@pytest.mark.parametrize("path", sorted(WEB) + ["/admin/"])
def test_web_pages_refuse_students_and_teachers(app, browser, rp, make_student, path, svc):
    from idp.store.models import Account

    student = make_student()
    browser.sign_in_and_authorize(rp, student)
    assert browser.c.get(path).status_code == 403
    with svc.db.session() as s:
        s.get(Account, student.id).role = "teacher"
    assert browser.c.get(path).status_code == 403


def test_web_school_admin_cannot_open_other_school_account(app, make_account, other_school):
    from tests.admin.conftest import admin_sign_in

    browser = app.test_client()
    admin_sign_in(browser, make_account("school_admin"))
    other = make_account("student", in_school=other_school, totp=False)
    own = make_account("student", totp=False)
    assert browser.get(f"/admin/accounts/{other.id}").status_code == 403
    assert browser.get(f"/admin/accounts/{own.id}").status_code == 200
