"""What happens to tokens after they are issued: ID token contents and signatures, revocation
(RFC 7009), introspection (RFC 7662), disabled clients, private_key_jwt (RFC 7523)."""

from __future__ import annotations

import secrets
import time

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.conftest import redeem
from tests.oidc.conftest import basic_auth, refresh, sign_in_tokens, userinfo, verify_id_token

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _revoke(client, rp, token: str, hint: str | None = None):
    data = {"token": token}
    if hint:
        data["token_type_hint"] = hint
    return client.post("/revoke", data=data,
                       headers=basic_auth(rp.client_id, rp.client_secret))


def _introspect(client, rp, token: str, hint: str | None = None):
    data = {"token": token}
    if hint:
        data["token_type_hint"] = hint
    return client.post("/introspect", data=data,
                       headers=basic_auth(rp.client_id, rp.client_secret))


# ----------------------------------------------------------------------------- ID token
def test_id_token_claims(browser, rp, shared_student, svc):
    before = int(time.time())
    tokens = sign_in_tokens(browser, rp, shared_student, nonce="abc")
    claims = tokens.claims
    assert claims["iss"] == svc.settings.issuer
    assert claims["aud"] == rp.client_id
    assert claims["azp"] == rp.client_id
    assert claims["exp"] - claims["iat"] == svc.settings.id_token_lifetime
    assert before - 1 <= claims["auth_time"] <= claims["iat"]
    assert claims["acr"] == "urn:mynagate:acr:password"
    assert claims["amr"] == ["pwd"]
    assert isinstance(claims["sid"], str) and claims["sid"]
    assert claims["nonce"] == "abc"
    assert "at_hash" in claims
    # The internal account id never leaves the provider.
    assert shared_student.id not in tokens.body["id_token"]
    assert shared_student.id not in str(claims)
    # Same browser session, same sid.
    again = sign_in_tokens(browser, rp, shared_student)
    assert again.claims["sid"] == claims["sid"]


def test_id_token_rs256_by_default_and_es256_per_client(browser, make_rp, shared_student, client):
    rs = sign_in_tokens(browser, make_rp(), shared_student)
    es_rp = make_rp(host="es.example.test", id_token_signed_response_alg="ES256")
    es = sign_in_tokens(browser, es_rp, shared_student, alg="ES256")
    assert jwt.decode(rs.body["id_token"], _jwks(client), algorithms=["RS256"])
    assert es.claims["aud"] == es_rp.client_id
    # The ES256 token does not verify as RS256 and vice versa.
    import pytest
    from joserfc.errors import JoseError

    with pytest.raises(JoseError):
        jwt.decode(es.body["id_token"], _jwks(client), algorithms=["RS256"])


def _jwks(client):
    from joserfc.jwk import KeySet

    return KeySet.import_key_set(client.get("/jwks.json").get_json())


def test_id_token_profile_claims_only_with_scope(browser, rp, shared_student):
    plain = sign_in_tokens(browser, rp, shared_student, scope="openid")
    assert "name" not in plain.claims
    info = userinfo(browser.c, plain.body["access_token"]).get_json()
    assert set(info) == {"sub"}
    with_profile = sign_in_tokens(browser, rp, shared_student, scope="openid profile school")
    info = userinfo(browser.c, with_profile.body["access_token"]).get_json()
    assert info["name"] == "山田 花子"
    assert info["grade"] == "5"


def test_userinfo_without_or_with_bad_token(client):
    missing = client.get("/userinfo")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    bad = client.get("/userinfo", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]


# ----------------------------------------------------------------------------- revocation
def test_revoke_access_token(client, browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student)
    access = tokens.body["access_token"]
    response = _revoke(client, rp, access, "access_token")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert userinfo(client, access).status_code == 401


def test_revoke_refresh_token_kills_its_family(client, browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student, scope="openid offline_access")
    renewed = refresh(client, rp, tokens.body["refresh_token"]).get_json()
    response = _revoke(client, rp, renewed["refresh_token"], "refresh_token")
    assert response.status_code == 200
    assert refresh(client, rp, renewed["refresh_token"]).status_code == 400
    assert userinfo(client, renewed["access_token"]).status_code == 401
    assert userinfo(client, tokens.body["access_token"]).status_code == 401


def test_revoke_unknown_token_is_200(client, rp):
    assert _revoke(client, rp, "never-issued").status_code == 200


def test_revoke_needs_client_authentication(client, browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student)
    response = client.post("/revoke", data={"token": tokens.body["access_token"]})
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == "invalid_client"
    assert userinfo(client, tokens.body["access_token"]).status_code == 200


def test_revoke_another_clients_token_is_refused(client, browser, make_rp, shared_student):
    rp = make_rp()
    other = make_rp(host="other.example.test")
    tokens = sign_in_tokens(browser, rp, shared_student)
    response = _revoke(client, other, tokens.body["access_token"])
    assert response.status_code == 400
    assert userinfo(client, tokens.body["access_token"]).status_code == 200


# ----------------------------------------------------------------------------- introspection
def test_introspection_of_own_tokens(client, browser, rp, shared_student, svc):
    tokens = sign_in_tokens(browser, rp, shared_student, scope="openid offline_access")
    response = _introspect(client, rp, tokens.body["access_token"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["active"] is True
    assert body["client_id"] == rp.client_id
    assert body["sub"] == tokens.claims["sub"]
    assert body["iss"] == svc.settings.issuer
    assert body["exp"] > time.time()
    assert set(body["scope"].split()) == {"openid", "offline_access"}
    as_refresh = _introspect(client, rp, tokens.body["refresh_token"], "refresh_token")
    assert as_refresh.get_json()["active"] is True
    assert as_refresh.get_json()["token_type"] == "refresh_token"


def test_introspection_needs_client_authentication(client, browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student)
    response = client.post("/introspect", data={"token": tokens.body["access_token"]})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_introspection_by_another_client_is_inactive(client, browser, make_rp, shared_student):
    rp = make_rp()
    other = make_rp(host="other.example.test")
    tokens = sign_in_tokens(browser, rp, shared_student)
    assert _introspect(client, other, tokens.body["access_token"]).get_json() == {
        "active": False}


def test_introspection_of_revoked_or_unknown_is_inactive(client, browser, rp, shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student)
    _revoke(client, rp, tokens.body["access_token"])
    assert _introspect(client, rp, tokens.body["access_token"]).get_json() == {"active": False}
    assert _introspect(client, rp, "made-up").get_json() == {"active": False}


# ----------------------------------------------------------------------------- disabled client
def test_disabled_client_tokens_stop_at_once(client, browser, make_rp, shared_student, svc):
    from idp.store.models import Client

    rp = make_rp()
    other = make_rp(host="other.example.test")
    tokens = sign_in_tokens(browser, rp, shared_student, scope="openid offline_access")
    assert userinfo(client, tokens.body["access_token"]).status_code == 200
    with svc.db.session() as db:
        db.get(Client, rp.client_id).enabled = False
    assert userinfo(client, tokens.body["access_token"]).status_code == 401
    # The disabled client can no longer authenticate anywhere ...
    own = _introspect(client, rp, tokens.body["access_token"])
    assert own.status_code == 401
    assert refresh(client, rp, tokens.body["refresh_token"]).status_code == 401
    # ... and nobody else sees its tokens as active.
    assert _introspect(client, other, tokens.body["access_token"]).get_json() == {
        "active": False}


# ----------------------------------------------------------------------------- private_key_jwt
def _assertion(key, client_id: str, audience: str, jti: str | None = None,
               alg: str = "RS256", **overrides) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience,
              "jti": jti or secrets.token_urlsafe(12), "iat": now, "exp": now + 60}
    claims.update(overrides)
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key)


def _pkjwt_redeem(client, rp, code: str, verifier: str, assertion: str):
    return client.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier, "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion, "client_id": rp.client_id})


def test_private_key_jwt_client_authentication(client, browser, make_rp, shared_student, svc):
    key = RSAKey.generate_key(2048, auto_kid=True)
    public = key.as_dict(private=False)
    rp = make_rp(host="pkjwt.example.test", auth_method="private_key_jwt",
                 jwks={"keys": [public]})
    assert rp.client_secret is None
    token_url = svc.settings.issuer + "/token"

    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    assertion = _assertion(key, rp.client_id, token_url)
    response = _pkjwt_redeem(client, rp, query["code"], verifier, assertion)
    assert response.status_code == 200, response.get_json()
    verify_id_token(client, rp, response.get_json()["id_token"])

    # The same assertion (same jti) a second time is refused.
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    replay = _pkjwt_redeem(client, rp, query["code"], verifier, assertion)
    # RFC 6749 §5.2: 401 is required only for the Authorization header; 400 is allowed here.
    assert replay.status_code in (400, 401)
    assert replay.get_json()["error"] == "invalid_client"


def test_private_key_jwt_refuses_wrong_key_audience_and_expiry(client, browser, make_rp,
                                                                 shared_student, svc):
    key = ECKey.generate_key("P-256", auto_kid=True)
    rp = make_rp(host="pkjwt2.example.test", auth_method="private_key_jwt",
                 jwks={"keys": [key.as_dict(private=False)]})
    token_url = svc.settings.issuer + "/token"
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    bad = [
        _assertion(stranger, rp.client_id, token_url, alg="ES256"),
        _assertion(key, rp.client_id, "https://elsewhere.example/token", alg="ES256"),
        _assertion(key, rp.client_id, token_url, alg="ES256", exp=int(time.time()) - 600),
        _assertion(key, rp.client_id, token_url, alg="ES256", iss="someone-else"),
    ]
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    for assertion in bad:
        response = _pkjwt_redeem(client, rp, query["code"], verifier, assertion)
        assert response.status_code in (400, 401), response.get_json()
        assert response.get_json()["error"] == "invalid_client"
    # The code was never consumed by the refused attempts.
    good = _pkjwt_redeem(client, rp, query["code"], verifier,
                         _assertion(key, rp.client_id, token_url, alg="ES256"))
    assert good.status_code == 200, good.get_json()


def test_private_key_jwt_client_cannot_use_a_secret(client, browser, make_rp, shared_student):
    key = RSAKey.generate_key(2048, auto_kid=True)
    rp = make_rp(host="pkjwt3.example.test", auth_method="private_key_jwt",
                 jwks={"keys": [key.as_dict(private=False)]})
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    response = redeem(client, rp, query["code"], verifier)  # no client auth at all
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == "invalid_client"


def test_private_key_jwt_accepts_every_published_alg_and_nothing_else(client, browser,
                                                                      make_rp, shared_student,
                                                                      svc):
    from joserfc.jwk import OctKey

    from idp.clients.auth_methods import BY_NAME

    meta = client.get("/.well-known/openid-configuration").get_json()
    rsa = RSAKey.generate_key(2048, auto_kid=True)
    ec = ECKey.generate_key("P-256", auto_kid=True)
    rp = make_rp(host="pkjwt4.example.test", auth_method="private_key_jwt",
                 jwks={"keys": [rsa.as_dict(private=False), ec.as_dict(private=False)]})
    token_url = svc.settings.issuer + "/token"
    published = meta["token_endpoint_auth_signing_alg_values_supported"]
    for alg in BY_NAME["private_key_jwt"].signing_algs:  # HS256 is client_secret_jwt's
        assert alg in published
        key = ec if alg.startswith("ES") else rsa
        query, verifier = browser.sign_in_and_authorize(rp, shared_student)
        assertion = jwt.encode({"alg": alg, "kid": key.kid}, _claims(rp.client_id, token_url),
                               key, algorithms=[alg])
        response = _pkjwt_redeem(client, rp, query["code"], verifier, assertion)
        assert response.status_code == 200, (alg, response.get_json())
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    hmac_key = OctKey.import_key("a-shared-secret-that-nobody-registered-0123")
    forged = jwt.encode({"alg": "HS256"}, _claims(rp.client_id, token_url), hmac_key)
    response = _pkjwt_redeem(client, rp, query["code"], verifier, forged)
    assert response.get_json()["error"] == "invalid_client"


def _claims(client_id: str, audience: str) -> dict:
    now = int(time.time())
    return {"iss": client_id, "sub": client_id, "aud": audience,
            "jti": secrets.token_urlsafe(12), "iat": now, "exp": now + 60}


# ----------------------------------------------------------------------------- at rest
def test_codes_tokens_and_secrets_are_stored_hashed(browser, rp, shared_student, svc, client):
    from sqlalchemy import select

    from idp.oidc.tokens import token_hash
    from idp.store.models import Client, Token

    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    assert svc.store.get("code:" + query["code"]) is None
    assert svc.store.get("code:" + token_hash(query["code"])) is not None
    body = redeem(client, rp, query["code"], verifier).get_json()
    with svc.db.session() as db:
        row = db.scalar(select(Token).where(
            Token.access_token_hash == token_hash(body["access_token"])))
        assert row is not None
        assert body["access_token"] not in (row.access_token_hash, row.refresh_token_hash)
        stored_client = db.get(Client, rp.client_id)
        assert rp.client_secret not in (stored_client.client_secret_hash or "")
        assert stored_client.client_secret_hash


def test_at_hash_matches_the_access_token(browser, rp, shared_student):
    import base64
    import hashlib

    tokens = sign_in_tokens(browser, rp, shared_student)
    digest = hashlib.sha256(tokens.body["access_token"].encode()).digest()
    expected = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert tokens.claims["at_hash"] == expected


def test_sub_never_logged_or_audited(browser, rp, shared_student, svc, caplog):
    import logging

    from sqlalchemy import select

    from idp.store.models import AuditEvent

    caplog.set_level(logging.DEBUG)
    tokens = sign_in_tokens(browser, rp, shared_student, scope="openid offline_access")
    userinfo(browser.c, tokens.body["access_token"])
    refresh(browser.c, rp, tokens.body["refresh_token"])
    sub = tokens.claims["sub"]
    assert all(sub not in record.getMessage() for record in caplog.records)
    assert any(shared_student.id in record.getMessage() for record in caplog.records)
    with svc.db.session() as db:
        events = db.scalars(select(AuditEvent).where(
            AuditEvent.account_id == shared_student.id)).all()
        assert events
        assert all(sub not in str(event.details) for event in events)
