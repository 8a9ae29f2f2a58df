"""The authorization endpoint, configured strictly (RFC 9700 §2.1, §4.1; RFC 9207; OIDC Core
§3.1.2)."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import pkce_pair, query_of, redeem
from tests.oidc.conftest import sign_in_tokens


def _authorize(client, rp, **params):
    verifier, challenge = pkce_pair()
    query = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
             "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"}
    query.update(params)
    return client.get("/authorize", query_string={k: v for k, v in query.items()
                                                  if v is not None}), verifier


def _error_at_client(response, rp, issuer: str) -> dict[str, str]:
    """An error sent back to the client's registered redirect URI, with ``iss``."""
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    location = response.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?"), location
    query = query_of(location)
    assert query["iss"] == issuer
    assert "code" not in query
    return query


def _error_page(response) -> str:
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_pkce_missing_is_refused(client, rp, svc):
    response, _ = _authorize(client, rp, code_challenge=None, code_challenge_method=None,
                             state="p")
    query = _error_at_client(response, rp, svc.settings.issuer)
    assert query["error"] == "invalid_request"
    assert query["state"] == "p"


def test_pkce_missing_is_refused_for_a_signed_in_student(browser, rp, shared_student, svc):
    sign_in_tokens(browser, rp, shared_student)
    response, _ = browser.authorize(rp, code_challenge=None, code_challenge_method=None)
    assert _error_at_client(response, rp, svc.settings.issuer)["error"] == "invalid_request"


def test_pkce_plain_is_refused(client, rp, svc):
    response, _ = _authorize(client, rp, code_challenge="a" * 50, code_challenge_method="plain")
    assert _error_at_client(response, rp, svc.settings.issuer)["error"] == "invalid_request"


def test_pkce_method_defaulting_to_plain_is_refused(client, rp, svc):
    """No method means ``plain`` (RFC 7636 §4.3): refused like an explicit plain."""
    response, _ = _authorize(client, rp, code_challenge_method=None)
    assert _error_at_client(response, rp, svc.settings.issuer)["error"] == "invalid_request"


def test_pkce_malformed_challenge_is_refused(client, rp, svc):
    response, _ = _authorize(client, rp, code_challenge="short")
    assert _error_at_client(response, rp, svc.settings.issuer)["error"] == "invalid_request"


def test_pkce_verifier_mismatch_is_invalid_grant(client, browser, rp, shared_student):
    query, _verifier = browser.sign_in_and_authorize(rp, shared_student)
    other_verifier, _ = pkce_pair()
    response = redeem(client, rp, query["code"], other_verifier)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_pkce_verifier_missing_at_token_endpoint_is_refused(client, browser, rp, shared_student):
    query, _verifier = browser.sign_in_and_authorize(rp, shared_student)
    response = redeem(client, rp, query["code"], None)
    assert response.status_code == 400
    assert response.get_json()["error"] in ("invalid_request", "invalid_grant")


def test_unknown_client_gets_an_error_page_not_a_redirect(client, rp):
    response, _ = _authorize(client, rp, client_id="no-such-client")
    _error_page(response)
    response, _ = _authorize(client, rp, client_id=None)
    _error_page(response)


def test_disabled_client_gets_an_error_page(client, rp, svc):
    from idp.store.models import Client

    with svc.db.session() as db:
        db.get(Client, rp.client_id).enabled = False
    response, _ = _authorize(client, rp)
    _error_page(response)


def test_missing_redirect_uri_with_one_registered_uses_it_exactly(client, make_rp, svc):
    """With a single registered URI the request may omit it; errors still go there with iss."""
    rp = make_rp()
    response, _ = _authorize(client, rp, redirect_uri=None, response_type="token", state="q")
    query = _error_at_client(response, rp, svc.settings.issuer)
    assert query["error"] == "unsupported_response_type"


def test_missing_redirect_uri_with_two_registered_is_an_error_page(client, make_rp):
    rp = make_rp(redirect_uris=["https://two.example.test/a", "https://two.example.test/b"])
    response, _ = _authorize(client, rp, redirect_uri=None)
    _error_page(response)


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "none"])
def test_only_response_type_code(client, rp, svc, response_type):
    response, _ = _authorize(client, rp, response_type=response_type, state="rt")
    query = query_of(response.headers.get("Location", "")) if response.status_code in (
        302, 303) else {}
    # Never a fragment, never a token in the front channel.
    assert "#" not in response.headers.get("Location", "")
    assert query.get("error") == "unsupported_response_type", response.status_code
    assert query["iss"] == svc.settings.issuer
    assert query["state"] == "rt"


def test_iss_on_every_redirect(browser, new_browser, rp, shared_student, svc):
    issuer = svc.settings.issuer
    # success
    tokens = sign_in_tokens(browser, rp, shared_student)
    assert tokens.query["iss"] == issuer
    # errors: login_required, invalid_request (PKCE), unsupported_response_type, bad max_age
    fresh = new_browser()
    for params in ({"prompt": "none"}, {"code_challenge_method": "plain"},
                   {"response_type": "token"}, {"max_age": "-1"}):
        response, _ = fresh.authorize(rp, **params)
        assert query_of(response.headers["Location"])["iss"] == issuer, params


def test_state_is_optional_and_returned_verbatim(browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student)
    assert "state" not in tokens.query
    odd = "a b+c/d?e=f&g%20h;ü\u3042"
    tokens = sign_in_tokens(browser, rp, shared_student, state=odd)
    assert tokens.query["state"] == odd


def test_nonce_echoed_only_when_sent(browser, rp, shared_student):
    assert "nonce" not in sign_in_tokens(browser, rp, shared_student).claims
    claims = sign_in_tokens(browser, rp, shared_student, nonce="n-0123").claims
    assert claims["nonce"] == "n-0123"


def test_consent_denied_is_access_denied(new_browser, make_rp, shared_student, svc):
    browser = new_browser()
    rp = make_rp()  # a fresh client: consent is asked
    response, _ = browser.authorize(rp, state="deny-me")
    login = browser.follow_to_login(response)
    after_login = browser.password_login(login, shared_student)
    resumed = browser.c.get(after_login.headers["Location"])
    assert resumed.headers["Location"].startswith("/consent")
    after_login = resumed
    denied = browser.consent(after_login, allow=False)
    # The consent page answers the app itself: no round trip through /authorize.
    query = _error_at_client(denied, rp, svc.settings.issuer)
    assert query["error"] == "access_denied"
    assert query["state"] == "deny-me"


def test_prompt_consent_asks_again(browser, rp, shared_student):
    sign_in_tokens(browser, rp, shared_student)
    response, _ = browser.authorize(rp, prompt="consent")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/consent")


def test_prompt_none_without_consent_is_consent_required(browser, make_rp, shared_student, svc):
    rp = make_rp()
    sign_in_tokens(browser, rp, shared_student)
    other = make_rp(host="fresh.example.test")
    response, _ = browser.authorize(other, prompt="none", state="c")
    query = _error_at_client(response, other, svc.settings.issuer)
    assert query["error"] in ("consent_required", "interaction_required")
    assert query["state"] == "c"


def test_max_age_invalid_is_invalid_request(client, rp, svc):
    response, _ = _authorize(client, rp, max_age="abc")
    assert _error_at_client(response, rp, svc.settings.issuer)["error"] == "invalid_request"


def test_foreign_id_token_hint_is_refused(client, rp, svc):
    response, _ = _authorize(client, rp, id_token_hint="not.a.jwt")
    assert _error_at_client(response, rp, svc.settings.issuer)["error"] == "invalid_request"


def test_code_is_bound_to_its_redirect_uri(client, browser, make_rp, shared_student):
    rp = make_rp(redirect_uris=["https://two.example.test/a", "https://two.example.test/b"])
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    from tests.conftest import token_request

    response = token_request(client, rp, {"grant_type": "authorization_code",
                                          "code": query["code"], "code_verifier": verifier,
                                          "redirect_uri": "https://two.example.test/b"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_prompt_none_with_another_value_is_invalid_request(browser, rp, shared_student, svc):
    """OIDC Core §3.1.2.1: ``none`` with any other prompt value is an error."""
    sign_in_tokens(browser, rp, shared_student)
    response, _ = browser.authorize(rp, prompt="none login", state="pn")
    query = _error_at_client(response, rp, svc.settings.issuer)
    assert query["error"] == "invalid_request"
    assert query["state"] == "pn"


def test_request_object_is_rejected_as_unsupported(client, rp, svc):
    """Discovery says request objects are not supported, so one is refused, not ignored."""
    response, _ = _authorize(client, rp, request="eyJhbGciOiJub25lIn0.eyJzdGF0ZSI6IngifQ.")
    assert _error_at_client(response, rp, svc.settings.issuer)["error"] == "request_not_supported"
    response, _ = _authorize(client, rp, request_uri="https://rp.example.test/req.jwt")
    assert _error_at_client(response, rp, svc.settings.issuer)["error"] == \
        "request_uri_not_supported"


def test_consent_is_remembered_per_client_and_scopes(browser, make_rp, shared_student):
    rp = make_rp()
    sign_in_tokens(browser, rp, shared_student, scope="openid")
    # The same scopes again: no consent page.
    response, _ = browser.authorize(rp, scope="openid")
    assert response.headers["Location"].startswith(rp.redirect_uri)
    # More scopes: asked again.
    response, _ = browser.authorize(rp, scope="openid profile")
    assert response.headers["Location"].startswith("/consent")
    # Another client: asked again.
    other = make_rp(host="other.example.test")
    response, _ = browser.authorize(other, scope="openid")
    assert response.headers["Location"].startswith("/consent")


@pytest.mark.postgres
def test_a_code_redis_could_not_take_is_never_handed_out(browser, rp, shared_student,
                                                         monkeypatch, client):
    """The code's record and its audit event go to Redis in one round trip at the end of
    the request: when that round trip fails the browser gets the 503 page, never a
    redirect carrying a code the store does not hold."""
    import redis

    browser.sign_in_and_authorize(rp, shared_student)  # signed in: the next one is SSO

    def refused(self, *args, **kwargs):
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(redis.client.Pipeline, "execute", refused)
    response, _ = browser.authorize(rp)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "code=" not in response.headers.get("Location", "")
    monkeypatch.undo()
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    assert redeem(client, rp, query["code"], verifier).status_code == 200


@pytest.mark.postgres
def test_a_signed_in_authorize_costs_two_redis_round_trips(browser, rp, shared_student,
                                                           monkeypatch):
    """The hot path's budget (issue 10): the session's read, then the code's record and
    its audit event together. A third round trip here is a regression of every SSO."""
    import redis

    browser.sign_in_and_authorize(rp, shared_student)
    trips: list[str] = []
    command, pipeline = redis.Redis.execute_command, redis.client.Pipeline.execute
    # The request's own round trips: the test client runs it in this thread. The event
    # log's drainer (another thread, on its own timer) may send its XACK meanwhile.
    request_thread = threading.get_ident()

    def one_command(self, *args, **kwargs):
        if threading.get_ident() == request_thread:
            trips.append(str(args[0]))
        return command(self, *args, **kwargs)

    def one_pipeline(self, *args, **kwargs):
        if threading.get_ident() == request_thread:
            trips.append("pipeline:" + ",".join(str(c[0][0]) for c in self.command_stack))
        return pipeline(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "execute_command", one_command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", one_pipeline)
    response, _ = browser.authorize(rp)
    assert response.status_code in (302, 303) and "code=" in response.headers["Location"]
    assert trips == ["GET", "pipeline:SET,XADD"], trips  # the code, then its event
