"""Graduates at the apps (idp.accounts.lifecycle.may_use_client): the same ``sub`` through
promotion and graduation, the claims that change, and a graduate refused everywhere at an
app that does not allow graduates, with a live session, access token or refresh token."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from tests.conftest import Student, query_of, unique
from tests.oidc.conftest import basic_auth, refresh, sign_in_tokens, userinfo

SCOPE = "openid school offline_access"


@pytest.fixture
def grad_school(svc):
    from idp.store.models import School

    with svc.db.session() as s:
        row = School(code=unique("grd"), name="卒業小学校", top_grade=6)
        s.add(row)
    return row


@pytest.fixture
def make_pupil(svc, grad_school):
    from idp.signin.passwords import hash_password
    from idp.store.models import Account

    def make(grade: str = "6", class_name: str = "1") -> Student:
        password = "correct horse battery " + secrets.token_hex(2)
        login = unique("pup")
        with svc.db.session() as s:
            row = Account(school_id=grad_school.id, login_id=login, display_name="卒業 花子",
                          password_hash=hash_password(password), grade=grade,
                          class_name=class_name)
            s.add(row)
        return Student(row.id, grad_school.code, login, password)

    return make


@pytest.fixture
def graduates_app(make_rp, svc):
    from idp.store.models import Client

    rp = make_rp(host="alumni.example.test", name="卒業生の連絡アプリ")
    with svc.db.session() as s:
        s.get(Client, rp.client_id).allow_graduates = True
    return rp


def promote(svc, school, roster: bytes | None = None):
    """The year-end promotion as an admin applies it (preview, then apply its token)."""
    from idp.accounts.roles import PLATFORM_ADMIN, Actor
    from idp.admin import school_year
    from idp.store.models import School

    actor = Actor("test", PLATFORM_ADMIN, "")
    with svc.db.session() as s:
        row = s.get(School, school.id)
        plan, assignments = school_year.preview(s, actor, row, roster)
        return school_year.apply(s, actor, row, plan.token, assignments)


def _graduated_days_ago(svc, account_id: str, days: int) -> None:
    from idp.store.models import Account, utcnow

    with svc.db.session() as s:
        s.get(Account, account_id).graduated_at = utcnow() - timedelta(days=days)


def test_same_sub_through_promotion_and_graduation_and_the_claims_follow(
        browser, svc, grad_school, make_pupil, graduates_app):
    pupil = make_pupil(grade="5", class_name="2")
    before = sign_in_tokens(browser, graduates_app, pupil, scope=SCOPE)
    info = userinfo(browser.c, before.body["access_token"]).get_json()
    assert (info["grade"], info["homeroom"], info["status"]) == ("5", "2", "active")

    promote(svc, grad_school, f"login_id,grade,class\n{pupil.login_id},6,3\n".encode())
    promoted = refresh(browser.c, graduates_app, before.body["refresh_token"]).get_json()
    info = userinfo(browser.c, promoted["access_token"]).get_json()
    assert (info["grade"], info["homeroom"], info["status"]) == ("6", "3", "active")
    assert info["sub"] == before.claims["sub"]

    promote(svc, grad_school)  # now in the top grade: graduates
    graduated = refresh(browser.c, graduates_app, promoted["refresh_token"])
    assert graduated.status_code == 200, graduated.get_json()
    info = userinfo(browser.c, graduated.get_json()["access_token"]).get_json()
    assert info["status"] == "graduated" and info["sub"] == before.claims["sub"]
    # A new sign-in at the graduates' app: same sub in the ID token.
    again = sign_in_tokens(browser, graduates_app, pupil, scope=SCOPE)
    assert again.claims["sub"] == before.claims["sub"]


def test_a_graduate_cannot_reach_a_non_graduate_app_with_anything_they_held(
        browser, svc, grad_school, make_pupil, rp):
    pupil = make_pupil(grade="6")
    held = sign_in_tokens(browser, rp, pupil, scope=SCOPE).body
    promote(svc, grad_school)
    # The access token: UserInfo and introspection say no.
    assert userinfo(browser.c, held["access_token"]).status_code == 401
    for token in (held["access_token"], held["refresh_token"]):
        answer = browser.c.post("/introspect", data={"token": token},
                                headers=basic_auth(rp.client_id, rp.client_secret))
        assert answer.get_json() == {"active": False}
    # The refresh token: invalid_grant.
    renewed = refresh(browser.c, rp, held["refresh_token"])
    assert renewed.status_code == 400 and renewed.get_json()["error"] == "invalid_grant"
    # The session: a page a child understands (never a 500, never a code).
    response, _verifier = browser.authorize(rp, scope="openid", state="st-1")
    page = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "このアプリはもうつかえません" in page and "卒業" in page
    back = query_of(_href(page, "back-to-app"))
    assert back["error"] == "access_denied" and back["state"] == "st-1"
    assert back["iss"] == svc.settings.issuer
    assert "graduated" in back["error_description"]


def test_prompt_none_sends_access_denied_to_the_app(browser, svc, grad_school, make_pupil,
                                                    rp):
    pupil = make_pupil(grade="6")
    sign_in_tokens(browser, rp, pupil, scope="openid")
    promote(svc, grad_school)
    response, _verifier = browser.authorize(rp, scope="openid", prompt="none", state="s2")
    assert response.status_code in (302, 303)
    answer = query_of(response.headers["Location"])
    assert answer["error"] == "access_denied" and answer["state"] == "s2"


def test_the_graduates_app_works_only_in_the_grace_period(
        browser, new_browser, svc, grad_school, make_pupil, graduates_app):
    pupil = make_pupil(grade="6")
    held = sign_in_tokens(browser, graduates_app, pupil, scope=SCOPE).body
    promote(svc, grad_school)
    fresh = sign_in_tokens(new_browser(), graduates_app, pupil, scope=SCOPE).body
    assert userinfo(browser.c, fresh["access_token"]).get_json()["status"] == "graduated"
    # Past the grace period, before the lifecycle run has deactivated the account: refused.
    _graduated_days_ago(svc, pupil.id, 91)
    assert userinfo(browser.c, fresh["access_token"]).status_code == 401
    renewed = refresh(browser.c, graduates_app, held["refresh_token"])
    assert renewed.status_code == 400 and renewed.get_json()["error"] == "invalid_grant"
    response, _verifier = browser.authorize(graduates_app, scope="openid")
    assert response.status_code == 403
    assert "このアプリはもうつかえません" in response.get_data(as_text=True)


def test_a_code_issued_before_graduation_is_refused_at_a_non_graduate_app(
        browser, svc, grad_school, make_pupil, rp):
    from tests.conftest import redeem

    pupil = make_pupil(grade="6")
    query, verifier = browser.sign_in_and_authorize(rp, pupil, scope="openid")
    promote(svc, grad_school)
    response = redeem(browser.c, rp, query["code"], verifier)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_discovery_lists_the_school_year_claims(client):
    supported = client.get("/.well-known/openid-configuration").get_json()["claims_supported"]
    assert {"school_code", "grade", "homeroom", "status"} <= set(supported)


def _href(html: str, element_id: str) -> str:
    import html as html_lib
    import re

    match = re.search(rf'id="{element_id}" href="([^"]+)"', html)
    assert match, f"no link {element_id}"
    return html_lib.unescape(match.group(1))


def test_the_students_page_shows_the_school_year(browser, svc, grad_school, make_pupil, rp):
    pupil = make_pupil(grade="6", class_name="2")
    sign_in_tokens(browser, rp, pupil, scope="openid")
    page = browser.c.get("/account/").get_data(as_text=True)
    assert "6年" in page and "2組" in page and 'id="my-status"' not in page
    promote(svc, grad_school)
    page = browser.c.get("/account/").get_data(as_text=True)
    assert 'id="my-status"' in page and "卒業しました" in page
