"""client_secret_jwt (OIDC Core §9, issue 9): an HS256 assertion keyed with the client
secret, under the same claim rules as private_key_jwt (idp.oidc.client_auth). The provider
keeps the secret only hashed and, for these clients alone, sealed with a key derived from
settings.secret_key: the database copy is not the secret."""

from __future__ import annotations

import base64
import json
import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from tests.conftest import redeem
from tests.oidc.conftest import verify_id_token
from tests.oidc.test_private_key_jwt import refused, use

METHOD = "client_secret_jwt"


@pytest.fixture
def cs_rp(make_rp):
    return make_rp(host=f"csjwt-{secrets.token_hex(3)}.example.test", auth_method=METHOD)


@pytest.fixture
def token_url(svc):
    return svc.settings.issuer + "/token"


def claims_for(client_id: str, aud, **claims) -> dict:
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": aud,
            "jti": secrets.token_urlsafe(12), "iat": now, "exp": now + 60}
    body.update(claims)
    return {k: v for k, v in body.items() if v is not None}


def hs_assertion(secret: str, client_id: str, aud, alg: str = "HS256", **claims) -> str:
    return jwt.encode({"alg": alg}, claims_for(client_id, aud, **claims),
                      OctKey.import_key(secret), algorithms=[alg])


def row_of(svc, client_id: str):
    from idp.store.models import Client

    with svc.db.session() as db:
        return db.get(Client, client_id)


def test_a_client_secret_jwt_client_gets_tokens_with_an_hs256_assertion(
        client, browser, cs_rp, token_url, shared_student):
    assert cs_rp.client_secret  # issued (and shown) once, like any other secret
    response = use(client, browser, cs_rp, shared_student,
                   hs_assertion(cs_rp.client_secret, cs_rp.client_id, token_url))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    verify_id_token(client, cs_rp, body["id_token"])
    assert body["access_token"] and body["token_type"] == "Bearer"


def test_discovery_lists_client_secret_jwt_and_hs256(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert METHOD in meta["token_endpoint_auth_methods_supported"]
    assert METHOD in meta["introspection_endpoint_auth_methods_supported"]
    assert "HS256" in meta["token_endpoint_auth_signing_alg_values_supported"]
    assert "HS512" not in meta["token_endpoint_auth_signing_alg_values_supported"]


def test_a_wrong_secret_is_refused(client, browser, cs_rp, token_url, shared_student):
    refused(use(client, browser, cs_rp, shared_student,
                hs_assertion(secrets.token_urlsafe(32), cs_rp.client_id, token_url)))


def _unsigned(client_id: str, aud) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims_for(client_id, aud))}."


@pytest.mark.parametrize("forge", ["RS256", "none", "HS512-wrong-key", "HS512-right-key"])
def test_other_algorithms_are_refused(client, browser, cs_rp, token_url, shared_student,
                                      forge):
    """Only HS256 with the client's own secret: no RSA-signed, unsigned or HS512 assertion
    (with a guessed key, or even with the right one: HS512 is not published)."""
    if forge == "RS256":
        key = RSAKey.generate_key(2048, auto_kid=True)
        value = jwt.encode({"alg": "RS256", "kid": key.kid},
                           claims_for(cs_rp.client_id, token_url), key)
    elif forge == "none":
        value = _unsigned(cs_rp.client_id, token_url)
    elif forge == "HS512-wrong-key":
        value = hs_assertion(secrets.token_urlsafe(64), cs_rp.client_id, token_url, "HS512")
    else:
        value = hs_assertion(cs_rp.client_secret, cs_rp.client_id, token_url, "HS512")
    refused(use(client, browser, cs_rp, shared_student, value))


def test_a_replayed_jti_is_refused(client, browser, cs_rp, token_url, shared_student):
    value = hs_assertion(cs_rp.client_secret, cs_rp.client_id, token_url)
    assert use(client, browser, cs_rp, shared_student, value).status_code == 200
    refused(use(client, browser, cs_rp, shared_student, value))


def test_a_lifetime_over_five_minutes_is_refused(client, browser, cs_rp, token_url,
                                                 shared_student):
    now = int(time.time())
    refused(use(client, browser, cs_rp, shared_student,
                hs_assertion(cs_rp.client_secret, cs_rp.client_id, token_url,
                             iat=now, exp=now + 301)))
    refused(use(client, browser, cs_rp, shared_student,
                hs_assertion(cs_rp.client_secret, cs_rp.client_id, token_url, iat=None)))
    ok = hs_assertion(cs_rp.client_secret, cs_rp.client_id, token_url, iat=now, exp=now + 300)
    assert use(client, browser, cs_rp, shared_student, ok).status_code == 200


@pytest.mark.parametrize("aud", ["https://other-idp.example/token",
                                 ["https://other-idp.example/token", "AUDIENCE"]])
def test_another_audience_is_refused(client, browser, cs_rp, token_url, shared_student, aud):
    if isinstance(aud, list):
        aud = [token_url if a == "AUDIENCE" else a for a in aud]
    refused(use(client, browser, cs_rp, shared_student,
                hs_assertion(cs_rp.client_secret, cs_rp.client_id, aud)))


def test_a_client_secret_basic_client_cannot_send_a_client_secret_jwt_assertion(
        client, browser, make_rp, token_url, shared_student, svc):
    """A basic client's secret signs an assertion: the method is the registered one only (and
    a basic row has no sealed copy to check it with anyway)."""
    basic = make_rp(host="csjwt-basic.example.test")
    assert row_of(svc, basic.client_id).secret_sealed is None
    refused(use(client, browser, basic, shared_student,
                hs_assertion(basic.client_secret, basic.client_id, token_url)))
    query, verifier = browser.sign_in_and_authorize(basic, shared_student)
    assert redeem(client, basic, query["code"], verifier).status_code == 200


def test_a_client_secret_jwt_client_cannot_use_basic_or_post(client, browser, cs_rp,
                                                             shared_student):
    query, verifier = browser.sign_in_and_authorize(cs_rp, shared_student)
    response = redeem(client, cs_rp, query["code"], verifier)  # the secret in Basic auth
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


def test_the_database_copy_alone_is_not_the_secret(client, browser, cs_rp, make_rp, svc,
                                                   token_url, shared_student):
    from idp.clients.registry import hash_secret, open_sealed_secret

    row = row_of(svc, cs_rp.client_id)
    sealed = row.secret_sealed
    assert sealed and cs_rp.client_secret not in sealed
    assert row.client_secret_hash == hash_secret(cs_rp.client_secret)
    # Whoever has only the database signs with what it holds: refused.
    for stolen in (sealed, row.client_secret_hash):
        refused(use(client, browser, cs_rp, shared_student,
                    hs_assertion(stolen, cs_rp.client_id, token_url)))
    # Opening needs settings.secret_key, and the sealed value belongs to its own row.
    key = svc.settings.secret_key
    assert open_sealed_secret(sealed, cs_rp.client_id, key) == cs_rp.client_secret
    assert open_sealed_secret(sealed, cs_rp.client_id, "another-secret-key-0123456789") is None
    other = make_rp(host="csjwt-other.example.test", auth_method=METHOD)
    assert open_sealed_secret(sealed, other.client_id, key) is None
    assert open_sealed_secret(sealed[:-4] + "AAAA", cs_rp.client_id, key) is None


def test_a_row_without_its_sealed_copy_is_refused_until_rotated(app, client, browser, cs_rp,
                                                                svc, token_url, shared_student):
    from idp.clients import registry
    from idp.store.models import Client

    with svc.db.session() as db:
        db.get(Client, cs_rp.client_id).secret_sealed = None
    refused(use(client, browser, cs_rp, shared_student,
                hs_assertion(cs_rp.client_secret, cs_rp.client_id, token_url)))
    with app.app_context(), svc.db.session() as db:  # as the admin page and API rotate
        new = registry.rotate(db, db.get(Client, cs_rp.client_id), actor="test")
    refused(use(client, browser, cs_rp, shared_student,  # the old secret stops at once
                hs_assertion(cs_rp.client_secret, cs_rp.client_id, token_url)))
    response = use(client, browser, cs_rp, shared_student,
                   hs_assertion(new, cs_rp.client_id, token_url))
    assert response.status_code == 200, response.get_json()


def test_changing_method_seals_a_new_secret_or_drops_the_sealed_copy(svc, make_rp):
    from idp.clients import registry
    from idp.clients.registry import ClientSpec, open_sealed_secret
    from idp.store.models import Client

    basic = make_rp(host="csjwt-move.example.test")
    spec = ClientSpec(name="テスト算数アプリ", redirect_uris=[basic.redirect_uri],
                      post_logout_redirect_uris=[], token_endpoint_auth_method=METHOD)
    with svc.db.session() as db:
        row = db.get(Client, basic.client_id)
        new = registry.update_client(svc, db, row, spec, actor="test")
        # A hash cannot be sealed afterwards: moving to client_secret_jwt issues a new secret.
        assert new and new != basic.client_secret
        assert open_sealed_secret(row.secret_sealed, row.client_id,
                                  svc.settings.secret_key) == new
        spec.token_endpoint_auth_method = "client_secret_basic"
        assert registry.update_client(svc, db, row, spec, actor="test") is None
        assert row.secret_sealed is None and row.client_secret_hash


def test_each_assertion_verifier_says_not_mine_for_another_methods_client(app, svc, cs_rp,
                                                                          token_url):
    """A verifier never checks another method's client (no error, no key fetched): Authlib
    goes on to the next method."""
    from types import SimpleNamespace

    from idp.oidc.client_auth import ClientSecretJWT, PrivateKeyJWT
    from idp.oidc.clients import OAuthClient

    basic_row = SimpleNamespace(token_endpoint_auth_method="client_secret_basic",
                                client_id="basic-x", jwks=None, jwks_uri=None,
                                secret_sealed=None)
    value = hs_assertion(cs_rp.client_secret, cs_rp.client_id, token_url)
    request = SimpleNamespace(form={
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": value})
    with app.app_context():
        for verifier in (ClientSecretJWT([token_url]), PrivateKeyJWT([token_url])):
            assert verifier(lambda _id: OAuthClient(basic_row), request) is None
        own = row_of(svc, cs_rp.client_id)
        assert PrivateKeyJWT([token_url])(lambda _id: OAuthClient(own), request) is None
