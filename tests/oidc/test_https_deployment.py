"""Behind an https issuer: ``__Host-`` session cookie with Secure, HSTS, https discovery.

A second app on the same database and backend, configured with an https issuer."""

from __future__ import annotations

import pytest

from tests.conftest import pkce_pair, provider_app


@pytest.fixture(scope="module")
def https_app(settings_overrides):
    with provider_app({**settings_overrides, "issuer": "https://idp.example.test/"},
                      migrate=False) as application:
        yield application


def test_https_issuer_cookie_and_hsts(https_app, rp):
    client = https_app.test_client()
    verifier, challenge = pkce_pair()
    response = client.get("/authorize", base_url="https://idp.example.test", query_string={
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
        "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"})
    assert response.status_code == 303
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies and cookies[0].startswith("__Host-mynagate=")
    flags = cookies[0].lower()
    assert "; secure" in flags and "; httponly" in flags and "samesite=lax" in flags
    assert "path=/" in flags and "domain=" not in flags
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_https_discovery_issuer_has_no_trailing_slash(https_app):
    meta = https_app.test_client().get("/.well-known/openid-configuration",
                                       base_url="https://idp.example.test").get_json()
    assert meta["issuer"] == "https://idp.example.test"
    assert meta["token_endpoint"] == "https://idp.example.test/token"
