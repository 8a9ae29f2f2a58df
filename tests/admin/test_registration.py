"""RFC 7591 dynamic registration (only with an initial access token) and RFC 7592."""

from __future__ import annotations

import pytest

from tests.conftest import RP, redeem

META = {"client_name": "動的アプリ", "redirect_uris": ["https://dyn.example.test/cb"],
        "token_endpoint_auth_method": "client_secret_post", "scope": "openid profile"}


@pytest.fixture
def iat(client, platform_admin, token_of):
    def make(full: bool = False, **body):
        response = client.post("/api/admin/initial-access-tokens", json=body,
                               headers=token_of(platform_admin))
        assert response.status_code == 201, response.get_json()
        return response.get_json() if full else response.get_json()["token"]

    return make


def _register(client, token, meta=META):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/register", json=meta, headers=headers)


def test_registration_needs_an_initial_access_token(client):
    response = _register(client, None)
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_token"
    assert _register(client, "iat_guess").status_code == 401


def test_registration_with_token_then_sign_in(client, iat, browser, student):
    response = _register(client, iat())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    for key in ("client_id", "client_secret", "registration_access_token",
                "registration_client_uri", "client_id_issued_at"):
        assert body[key], key
    assert body["client_secret_expires_at"] == 0 and body["subject_type"] == "pairwise"
    rp = RP(body["client_id"], body["client_secret"], META["redirect_uris"][0],
            "dyn.example.test", "client_secret_post")
    query, verifier = browser.sign_in_and_authorize(rp, student)
    assert redeem(client, rp, query["code"], verifier).status_code == 200


def test_token_uses_are_limited_and_revocation_works(client, iat, platform_admin, token_of):
    token = iat(max_uses=1)
    assert _register(client, token).status_code == 201
    assert _register(client, token).status_code == 401
    listed = client.get("/api/admin/initial-access-tokens",
                        headers=token_of(platform_admin)).get_json()
    assert all("token" not in t for t in listed["initial_access_tokens"])
    second = iat(full=True, max_uses=5)
    assert client.delete(f"/api/admin/initial-access-tokens/{second['id']}",
                         headers=token_of(platform_admin)).status_code == 204
    assert _register(client, second["token"]).status_code == 401


def test_policy_scopes_and_https_redirects(client, iat):
    token = iat(max_uses=10, allowed_scopes=["openid"])
    refused = _register(client, token, {**META, "scope": "openid school"})
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "invalid_client_metadata"
    defaulted = _register(client, token, {k: v for k, v in META.items() if k != "scope"})
    assert defaulted.status_code == 201 and defaulted.get_json()["scope"] == "openid"
    plain_http = _register(client, token, {**META, "scope": "openid",
                                           "redirect_uris": ["http://dyn.example.test/cb"]})
    assert plain_http.status_code == 400
    assert plain_http.get_json()["error"] == "invalid_redirect_uri"
    loopback = _register(client, token, {**META, "scope": "openid",
                                         "redirect_uris": ["http://127.0.0.1:8123/cb"]})
    assert loopback.status_code == 201
    not_json = client.post("/register", data="client_name=x",
                           headers={"Authorization": f"Bearer {token}"})
    assert not_json.status_code == 400


def test_rfc7592_read_update_delete(client, iat):
    body = _register(client, iat()).get_json()
    uri = body["registration_client_uri"].split("127.0.0.1:5000", 1)[1]
    auth = {"Authorization": "Bearer " + body["registration_access_token"]}
    read = client.get(uri, headers=auth)
    assert read.status_code == 200 and "client_secret" not in read.get_json()
    assert client.get(uri, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(uri).status_code == 401
    updated = client.put(uri, json={**META, "client_id": body["client_id"],
                                    "client_name": "動的アプリ v2"}, headers=auth)
    assert updated.status_code == 200 and updated.get_json()["client_name"] == "動的アプリ v2"
    widened = client.put(uri, json={**META, "scope": "openid school"}, headers=auth)
    assert widened.status_code == 400
    other_id = client.put(uri, json={**META, "client_id": "someone-else"}, headers=auth)
    assert other_id.status_code == 400
    assert client.delete(uri, headers=auth).status_code == 204
    assert client.get(uri, headers=auth).status_code == 401


# ----------------------------------------------------------------------------- issue 8
def _scopes_of(svc, client_id: str) -> list[str]:
    from idp.store.models import Client

    with svc.db.session() as s:
        return list(s.get(Client, client_id).scopes)


def test_empty_scope_list_gets_the_tokens_scopes_not_all(client, iat, svc):
    token = iat(max_uses=5, allowed_scopes=["openid"])
    for empty in ({"scopes": []}, {"scope": ""}, {}):
        meta = {k: v for k, v in META.items() if k != "scope"} | empty
        response = _register(client, token, meta)
        assert response.status_code == 201, (empty, response.get_json())
        assert response.get_json()["scope"] == "openid"
        assert _scopes_of(svc, response.get_json()["client_id"]) == ["openid"]


def test_token_allowing_no_scopes_registers_nothing(client, iat, svc):
    """A token row whose list is empty (an old row, a bug elsewhere) grants none, not all."""
    from sqlalchemy import update

    from idp.clients.registry import hash_secret as digest
    from idp.store.admin_models import InitialAccessToken

    token = iat(max_uses=5)
    with svc.db.session() as s:
        s.execute(update(InitialAccessToken).where(InitialAccessToken.token_hash ==
                                                   digest(token)).values(allowed_scopes=[]))
    for meta in ({k: v for k, v in META.items() if k != "scope"}, META):
        response = _register(client, token, meta)
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_client_metadata"


def test_admin_cannot_issue_a_token_with_an_empty_scope_list(client, platform_admin,
                                                             token_of):
    response = client.post("/api/admin/initial-access-tokens", json={"allowed_scopes": []},
                           headers=token_of(platform_admin))
    assert response.status_code == 400


def test_update_with_empty_scopes_keeps_the_clients_scopes(client, iat, svc):
    """A hostile app holding its registration access token sends scopes [] hoping it reads
    as "every scope"."""
    body = _register(client, iat(allowed_scopes=["openid", "profile"])).get_json()
    uri = body["registration_client_uri"].split("127.0.0.1:5000", 1)[1]
    auth = {"Authorization": "Bearer " + body["registration_access_token"]}
    meta = {k: v for k, v in META.items() if k != "scope"}
    for empty in ({"scopes": []}, {"scope": ""}, {}):
        updated = client.put(uri, json=meta | empty, headers=auth)
        assert updated.status_code == 200, updated.get_json()
        assert updated.get_json()["scope"] == "openid profile"
        assert _scopes_of(svc, body["client_id"]) == ["openid", "profile"]
    widened = client.put(uri, json=meta | {"scopes": ["openid", "profile", "school"]},
                         headers=auth)
    assert widened.status_code == 400
    assert widened.get_json()["error"] == "invalid_client_metadata"


def test_client_with_an_empty_scope_list_is_granted_no_scope():
    from idp.oidc.clients import OAuthClient
    from idp.store.models import Client

    assert OAuthClient(Client(client_id="x", scopes=[])).get_allowed_scope("openid school") \
        == ""
    assert OAuthClient(Client(client_id="x", scopes=["openid"])).get_allowed_scope(
        "openid school") == "openid"


def test_client_name_is_optional_and_defaults_to_the_redirect_host(client, iat):
    token = iat(max_uses=3)
    meta = {k: v for k, v in META.items() if k != "client_name"}
    response = _register(client, token, meta)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["client_name"] == "dyn.example.test"
    body = response.get_json()
    uri = body["registration_client_uri"].split("127.0.0.1:5000", 1)[1]
    updated = client.put(uri, json=meta, headers={
        "Authorization": "Bearer " + body["registration_access_token"]})
    assert updated.status_code == 200 and updated.get_json()["client_name"] == \
        "dyn.example.test"


@pytest.mark.parametrize("token", [None, "iat_guess"])
@pytest.mark.parametrize("body", [META, {"client_name": 5}, "not an object",
                                  {**META, "redirect_uris": ["http://dyn.example.test/cb"]}])
def test_without_a_valid_token_metadata_is_never_judged(client, token, body):
    """Someone without a token learns nothing about which metadata would pass: 401 first,
    whatever the body."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post("/register", json=body, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_used_up_token_is_401_even_for_bad_metadata(client, iat):
    token = iat(max_uses=1)
    assert _register(client, token, {"client_name": 5}).status_code == 400  # use spent
    assert _register(client, token, {"client_name": 5}).status_code == 401
    assert _register(client, token).status_code == 401


@pytest.mark.parametrize("jwks_uri", ["https://10.0.0.7/jwks.json",
                                      "https://[::ffff:169.254.169.254]/jwks.json",
                                      "http://127.0.0.1:9/jwks.json"])
def test_registration_refuses_an_internal_jwks_uri(client, iat, jwks_uri):
    """A registrant names an internal service as its key URL, hoping the provider will
    fetch it later on its behalf."""
    response = _register(client, iat(), {"redirect_uris": ["https://pk.example.test/cb"],
                                         "token_endpoint_auth_method": "private_key_jwt",
                                         "jwks_uri": jwks_uri})
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == "invalid_client_metadata"
    assert "not allowed" in body["error_description"]


def test_an_app_cannot_register_itself_as_allowed_for_graduates(client, iat, svc):
    from idp.store.models import Client

    response = _register(client, iat(), {**META, "allow_graduates": True})
    assert response.status_code == 201, response.get_json()
    assert "allow_graduates" not in response.get_json()
    with svc.db.read() as s:
        assert s.get(Client, response.get_json()["client_id"]).allow_graduates is False
