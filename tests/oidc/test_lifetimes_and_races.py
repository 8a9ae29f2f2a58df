"""Lifetimes (access 10 min, refresh idle/absolute, sessions 30 min idle / 12 h absolute) with
a moved clock, and races on refresh-token rotation."""

from __future__ import annotations

import threading

from tests.conftest import query_of, token_request
from tests.oidc.conftest import basic_auth, keys_passed_to, refresh, sign_in_tokens, userinfo


def test_access_token_expires(client, browser, rp, shared_student, svc, travel):
    tokens = sign_in_tokens(browser, rp, shared_student)
    assert tokens.body["expires_in"] == svc.settings.access_token_lifetime
    travel(svc.settings.access_token_lifetime - 5)
    assert userinfo(client, tokens.body["access_token"]).status_code == 200
    travel(10)
    assert userinfo(client, tokens.body["access_token"]).status_code == 401


def test_refresh_token_introspection_outlives_its_access_token(client, browser, rp,
                                                               shared_student, svc, travel):
    tokens = sign_in_tokens(browser, rp, shared_student, scope="openid offline_access")
    travel(svc.settings.access_token_lifetime + 60)
    body = client.post("/introspect", data={"token": tokens.body["refresh_token"],
                                            "token_type_hint": "refresh_token"},
                       headers=basic_auth(rp.client_id, rp.client_secret)).get_json()
    assert body["active"] is True
    assert body["token_type"] == "refresh_token"
    access = client.post("/introspect", data={"token": tokens.body["access_token"]},
                         headers=basic_auth(rp.client_id, rp.client_secret)).get_json()
    assert access == {"active": False}
    # And the refresh token still works.
    assert refresh(client, rp, tokens.body["refresh_token"]).status_code == 200


def test_refresh_token_idle_limit(client, browser, rp, shared_student, svc, travel):
    tokens = sign_in_tokens(browser, rp, shared_student, scope="openid offline_access")
    travel(svc.settings.refresh_token_idle + 60)
    response = refresh(client, rp, tokens.body["refresh_token"])
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_refresh_token_absolute_limit(client, browser, rp, shared_student, svc, travel):
    tokens = sign_in_tokens(browser, rp, shared_student, scope="openid offline_access")
    current = tokens.body["refresh_token"]
    step = svc.settings.refresh_token_idle - 3600  # always used within the idle limit
    elapsed = 0
    while elapsed + step < svc.settings.refresh_token_lifetime:
        travel(step)
        elapsed += step
        response = refresh(client, rp, current)
        assert response.status_code == 200, (elapsed, response.get_json())
        current = response.get_json()["refresh_token"]
    travel(svc.settings.refresh_token_lifetime - elapsed + 60)
    response = refresh(client, rp, current)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_refresh_scope_may_narrow_but_not_widen(client, browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student, scope="openid offline_access")
    wider = refresh(client, rp, tokens.body["refresh_token"], scope="openid profile")
    assert wider.status_code == 400
    assert wider.get_json()["error"] == "invalid_scope"
    # A refused scope does not burn the refresh token.
    same = refresh(client, rp, tokens.body["refresh_token"])
    assert same.status_code == 200, same.get_json()


def test_refresh_for_deactivated_account_is_invalid_grant(client, browser, rp, make_student,
                                                          svc):
    from idp.store.models import Account

    student = make_student()
    tokens = sign_in_tokens(browser, rp, student, scope="openid offline_access")
    with svc.db.session() as db:
        db.get(Account, student.id).active = False
    response = refresh(client, rp, tokens.body["refresh_token"])
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
    assert userinfo(client, tokens.body["access_token"]).status_code == 401


def test_concurrent_refresh_exactly_one_wins(app, browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student, scope="openid offline_access")
    barrier = threading.Barrier(3)
    results: list[int] = []

    def race() -> None:
        c = app.test_client()
        barrier.wait()
        results.append(refresh(c, rp, tokens.body["refresh_token"]).status_code)

    threads = [threading.Thread(target=race) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [200, 400, 400], results


def test_token_request_without_redirect_uri_when_authorize_had_one(client, browser, rp,
                                                                  shared_student):
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    response = token_request(client, rp, {"grant_type": "authorization_code",
                                          "code": query["code"], "code_verifier": verifier})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


# ----------------------------------------------------------------------------- sessions
def test_session_idle_limit(browser, rp, shared_student, svc, travel):
    sign_in_tokens(browser, rp, shared_student)
    travel(svc.settings.session_idle - 120)
    response, _ = browser.authorize(rp, prompt="none")
    assert "code" in query_of(response.headers["Location"])  # activity keeps it alive
    travel(svc.settings.session_idle + 60)
    response, _ = browser.authorize(rp, prompt="none")
    assert query_of(response.headers["Location"])["error"] == "login_required"


def test_a_session_is_written_again_only_when_changed_or_once_a_minute(
        browser, rp, shared_student, svc, travel, monkeypatch):
    """A signed-in browser's requests that change nothing do not rewrite its session (the
    idle clock is refreshed at most once a minute); after a minute the next one does."""
    sign_in_tokens(browser, rp, shared_student)
    written = keys_passed_to(monkeypatch, svc.store, "put")
    response, _ = browser.authorize(rp, prompt="none")
    assert "code" in query_of(response.headers["Location"])
    assert not [key for key in written if key.startswith("sess:")]
    travel(61)
    response, _ = browser.authorize(rp, prompt="none")
    assert "code" in query_of(response.headers["Location"])
    assert len([key for key in written if key.startswith("sess:")]) == 1


def test_session_absolute_limit(browser, rp, shared_student, svc, travel):
    sign_in_tokens(browser, rp, shared_student)
    step = svc.settings.session_idle - 300
    elapsed = 0
    while elapsed + step < svc.settings.session_absolute:
        travel(step)
        elapsed += step
        response, _ = browser.authorize(rp, prompt="none")
        assert "code" in query_of(response.headers["Location"]), elapsed
    travel(svc.settings.session_absolute - elapsed + 60)
    response, _ = browser.authorize(rp, prompt="none")
    assert query_of(response.headers["Location"])["error"] == "login_required"


def test_prompt_none_with_max_age_exceeded_is_login_required(browser, rp, shared_student,
                                                             travel):
    sign_in_tokens(browser, rp, shared_student)
    travel(120)
    response, _ = browser.authorize(rp, prompt="none", max_age="60", state="m")
    query = query_of(response.headers["Location"])
    assert query["error"] == "login_required"
    assert query["state"] == "m"


def test_id_token_hint_for_another_student_with_prompt_none(new_browser, rp, shared_student,
                                                            make_student):
    first = sign_in_tokens(new_browser(), rp, shared_student)
    browser = new_browser()
    sign_in_tokens(browser, rp, make_student())
    response, _ = browser.authorize(rp, prompt="none", id_token_hint=first.body["id_token"])
    assert query_of(response.headers["Location"])["error"] == "login_required"
