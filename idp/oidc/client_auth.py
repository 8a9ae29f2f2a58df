"""Client authentication by signed assertion (OIDC Core §9, RFC 7523), registered with the
Authlib server for every assertion method in ``idp.clients.auth_methods``.

Stricter than Authlib's defaults, and the same for every assertion method: ``iat`` and
``exp`` are required and at most :data:`ASSERTION_MAX_LIFETIME` apart, ``aud`` is one
audience (this token endpoint or the issuer) — an assertion made for several servers at once
is refused — each ``jti`` is accepted once, and every failure is a 401 ``invalid_client``.
"""

from __future__ import annotations

import math
import time

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from idp.clients.auth_methods import ASSERTION_METHODS, BY_NAME
from idp.clients.registry import open_sealed_secret
from idp.oidc.tokens import token_hash
from idp.services import services

# An assertion is a one-shot proof made just before the token request: a long-lived one is a
# bearer credential in disguise (whoever copies it from a log can replay it until the jti
# store forgets), so its whole life is capped and the jti is remembered exactly that long.
ASSERTION_MAX_LIFETIME = 300


class _NotMine(Exception):
    """The assertion names a client registered with another auth method."""


class AssertionVerifier(JWTBearerClientAssertion):
    """The claim rules every assertion method shares (the module docstring); a subclass
    names its method and gives the key that checks the signature.

    An assertion naming a client of another method is "not mine" (None, so Authlib tries
    the next method and at the end refuses with 401 ``invalid_client``): a verifier never
    checks a signature with a key meant for something else."""

    CLIENT_AUTH_METHOD = ""

    def __init__(self, audiences: list[str]) -> None:
        super().__init__(validate_jti=True)
        self._audiences = audiences
        self._algorithms = list(BY_NAME[self.CLIENT_AUTH_METHOD].signing_algs)

    def __call__(self, query_client, request):
        def this_method_only(client_id: str):
            client = query_client(client_id)
            if client and not client.check_endpoint_auth_method(self.CLIENT_AUTH_METHOD,
                                                                "token"):
                raise _NotMine
            return client

        try:
            return super().__call__(this_method_only, request)
        except _NotMine:
            return None
        except InvalidClientError as exc:
            # RFC 6749 §5.2 allows 400 without an Authorization header; a 401 (Authlib adds
            # the WWW-Authenticate challenge) tells every client library the same thing.
            exc.status_code = 401
            raise

    def get_audiences(self) -> list[str]:
        return self._audiences

    def process_assertion_claims(self, assertion, resolve_key):
        # Exactly this method's published algorithms: Authlib's default ("recommended")
        # would take HS256 for private_key_jwt and leave out PS256, which discovery offers.
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=self._algorithms)
        except JoseError as exc:
            raise InvalidClientError(description=exc.description) from exc
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims) -> None:
        # Our rules first: Authlib's own check (super) records the jti, and an assertion
        # refused here must not use up its jti.
        _check_assertion_audience(claims.get("aud"), self._audiences)
        _check_assertion_lifetime(claims.get("iat"), claims.get("exp"), self.leeway)
        super().verify_claims(claims)

    def validate_jti(self, claims, jti) -> bool:
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            return False
        # Remembered until the assertion could no longer be accepted anyway (exp plus the
        # clock-skew leeway), and no longer: at most ASSERTION_MAX_LIFETIME + leeway.
        ttl = max(1, math.ceil(claims["exp"] + self.leeway - time.time()))
        return services().store.put_if_absent(
            "jti:" + token_hash(f"{claims.get('iss')}:{jti}"), {"seen": 1}, ttl)


class PrivateKeyJWT(AssertionVerifier):
    """``private_key_jwt`` (OIDC Core §9, RFC 7523): the client signs an assertion with a key
    from its registered ``jwks`` or ``jwks_uri``."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def resolve_client_public_key(self, client) -> KeySet:
        row = client.row
        keys = row.jwks
        if not keys and row.jwks_uri:
            from idp.oidc.jwks_cache import fetch_client_jwks
            from idp.outbound import policy_from_settings

            # Checked again at every fetch: DNS may have changed since registration.
            keys = fetch_client_jwks(row.jwks_uri,
                                     policy_from_settings(services().settings, http=True))
        try:
            return KeySet.import_key_set(keys) if keys else KeySet([])
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            # No keys registered or an unusable key set: the assertion cannot be checked,
            # so the client is not authenticated.
            raise InvalidClientError(description="the client has no usable keys") from exc


class ClientSecretJWT(AssertionVerifier):
    """``client_secret_jwt`` (OIDC Core §9): the client signs an assertion with HS256 keyed
    with its client secret, which the provider opens from ``clients.secret_sealed``."""

    CLIENT_AUTH_METHOD = "client_secret_jwt"

    def resolve_client_public_key(self, client) -> OctKey:
        row = client.row
        secret = open_sealed_secret(row.secret_sealed, row.client_id,
                                    services().settings.secret_key)
        if not secret:
            # No sealed copy (a row from before it, or sealed under another secret_key):
            # nothing to check the MAC with, so the client is not authenticated.
            raise InvalidClientError(description="the client has no usable secret; ask the "
                                     "administrator to rotate it")
        return OctKey.import_key(secret)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_assertion_audience(aud: object, audiences: list[str]) -> None:
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    if not isinstance(aud, str) or aud not in audiences:
        raise InvalidClientError(description="aud must be one value: this token endpoint "
                                 "or the issuer")


def _check_assertion_lifetime(iat: object, exp: object, leeway: int) -> None:
    if not _is_number(iat) or not _is_number(exp):
        raise InvalidClientError(description="the assertion needs numeric iat and exp")
    if iat > time.time() + leeway:
        raise InvalidClientError(description="the assertion was issued in the future")
    if not 0 < exp - iat <= ASSERTION_MAX_LIFETIME:
        raise InvalidClientError(description="the assertion may live at most "
                                 f"{ASSERTION_MAX_LIFETIME} seconds (exp - iat)")


VERIFIERS: dict[str, type[AssertionVerifier]] = {
    verifier.CLIENT_AUTH_METHOD: verifier for verifier in (ClientSecretJWT, PrivateKeyJWT)
}


def register_assertion_methods(server, audiences: list[str]) -> None:
    """Register a verifier for every assertion method of the one list (a method in the
    list without a verifier here is a programming error: fail at start-up, not at sign-in)."""
    for method in ASSERTION_METHODS:
        server.register_client_auth_method(method, VERIFIERS[method](audiences))
