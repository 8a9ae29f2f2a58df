"""private_key_jwt claim rules (issue 8): a short life (iat and exp, at most 5 minutes apart),
one audience, a jti remembered exactly as long as the assertion could be accepted, and every
failure a 401 invalid_client — never a 5xx."""

from __future__ import annotations

import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from idp.oidc.tokens import token_hash
from tests.conftest import redeem
from tests.oidc.conftest import verify_id_token

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def key():
    return RSAKey.generate_key(2048, auto_kid=True)


@pytest.fixture
def pk_rp(make_rp, key):
    return make_rp(host=f"pk-{secrets.token_hex(3)}.example.test",
                   auth_method="private_key_jwt", jwks={"keys": [key.as_dict(private=False)]})


@pytest.fixture
def token_url(svc):
    return svc.settings.issuer + "/token"


def assertion(key, client_id: str, aud, **claims) -> str:
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": aud,
            "jti": secrets.token_urlsafe(12), "iat": now, "exp": now + 60}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, body, key)


def use(client, browser, rp, student, value: str):
    query, verifier = browser.sign_in_and_authorize(rp, student)
    return client.post("/token", data={
        "grant_type": "authorization_code", "code": query["code"],
        "redirect_uri": rp.redirect_uri, "code_verifier": verifier,
        "client_assertion_type": JWT_BEARER, "client_assertion": value,
        "client_id": rp.client_id})


def refused(response) -> None:
    assert response.status_code == 401, response.get_json()
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers.get("WWW-Authenticate")


def test_five_minutes_is_the_longest_life(client, browser, pk_rp, key, token_url,
                                          shared_student):
    now = int(time.time())
    ok = assertion(key, pk_rp.client_id, token_url, iat=now, exp=now + 300)
    assert use(client, browser, pk_rp, shared_student, ok).status_code == 200


@pytest.mark.parametrize("claims", [
    {"exp": int(time.time()) + 3600},                        # a long-lived assertion
    {"iat": None},                                           # no iat: its life is unknown
    {"exp": None},
    {"iat": "yesterday"},
    {"iat": int(time.time()) + 3600, "exp": int(time.time()) + 3700},  # made in the future
    {"exp": int(time.time()) - 1, "iat": int(time.time())},  # exp before iat
])
def test_long_lived_or_undated_assertions_are_refused(client, browser, pk_rp, key, token_url,
                                                      shared_student, claims):
    refused(use(client, browser, pk_rp, shared_student,
                assertion(key, pk_rp.client_id, token_url, **claims)))


def test_one_audience_the_token_endpoint_or_the_issuer(client, browser, pk_rp, key, svc,
                                                       token_url, shared_student):
    for aud in (token_url, svc.settings.issuer, [token_url]):
        response = use(client, browser, pk_rp, shared_student,
                       assertion(key, pk_rp.client_id, aud))
        assert response.status_code == 200, (aud, response.get_json())
        verify_id_token(client, pk_rp, response.get_json()["id_token"])


@pytest.mark.parametrize("aud", [
    ["https://other-idp.example/token", "AUDIENCE"],  # minted for several servers at once
    ["AUDIENCE", "AUDIENCE"],
    "https://other-idp.example/token",                # minted for another server
    [],
    5,
])
def test_assertions_for_another_or_several_servers_are_refused(client, browser, pk_rp, key,
                                                               token_url, shared_student, aud):
    """A hostile server that received an assertion made for it (and for us) replays it here."""
    if isinstance(aud, list):
        aud = [token_url if a == "AUDIENCE" else a for a in aud]
    refused(use(client, browser, pk_rp, shared_student, assertion(key, pk_rp.client_id, aud)))


def test_replayed_jti_is_refused_and_kept_only_until_exp(client, browser, pk_rp, key,
                                                         token_url, shared_student, svc):
    now = int(time.time())
    value = assertion(key, pk_rp.client_id, token_url, jti="jti-" + secrets.token_hex(6),
                      iat=now, exp=now + 90)
    assert use(client, browser, pk_rp, shared_student, value).status_code == 200
    refused(use(client, browser, pk_rp, shared_student, value))
    claims = jwt.decode(value, key).claims
    ttl = svc.store.ttl("jti:" + token_hash(f"{pk_rp.client_id}:{claims['jti']}"))
    # exp - now plus the 60 s clock-skew leeway during which the assertion is still accepted.
    assert 0 < ttl <= 90 + 60 + 1


def test_refused_assertion_does_not_use_up_its_jti(client, browser, pk_rp, key, token_url,
                                                   shared_student):
    jti = "jti-" + secrets.token_hex(6)
    bad = assertion(key, pk_rp.client_id, [token_url, "https://x.example"], jti=jti)
    refused(use(client, browser, pk_rp, shared_student, bad))
    good = assertion(key, pk_rp.client_id, token_url, jti=jti)
    assert use(client, browser, pk_rp, shared_student, good).status_code == 200


def test_assertion_naming_a_client_without_keys_is_invalid_client(client, browser, make_rp,
                                                                  key, token_url,
                                                                  shared_student):
    """Someone signs an assertion for a client that uses a secret (no jwks, no jwks_uri)."""
    secret_rp = make_rp(host="nokeys.example.test")
    refused(use(client, browser, secret_rp, shared_student,
                assertion(key, secret_rp.client_id, token_url)))
    # The client itself still works with its secret.
    query, verifier = browser.sign_in_and_authorize(secret_rp, shared_student)
    assert redeem(client, secret_rp, query["code"], verifier).status_code == 200


def test_unknown_client_or_garbage_is_a_401(client, browser, pk_rp, key, token_url,
                                            shared_student):
    refused(use(client, browser, pk_rp, shared_student,
                assertion(key, "no-such-client", token_url)))
    refused(use(client, browser, pk_rp, shared_student, "not.a.jwt"))
