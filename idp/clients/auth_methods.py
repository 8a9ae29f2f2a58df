"""THE list of client authentication methods (OIDC Core §9; RFC 7591
``token_endpoint_auth_method``).

Discovery, client validation, the CLI, the admin forms, the OpenAPI document and the Authlib
server's client-auth registration all read this module, so a new method is one entry here
plus its verifier in ``idp.oidc.client_auth``. Plain data on purpose: it imports nothing of
the provider, and every room above may read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AuthMethod:
    name: str
    #: The provider issues a client secret (shown once, stored hashed).
    uses_secret: bool = False
    #: The client proves itself with a signed assertion (RFC 7523 ``client_assertion``).
    assertion: bool = False
    #: The client needs registered public keys (``jwks`` or ``jwks_uri``).
    needs_keys: bool = False
    #: The provider keeps an encrypted copy of the secret (``clients.secret_sealed``): an
    #: HMAC assertion is checked with the secret itself, which its hash cannot give back.
    seals_secret: bool = False
    #: Signature algorithms accepted for its assertions (published in discovery).
    signing_algs: tuple[str, ...] = ()


# Order matters: it is the order Authlib tries them in, and the order discovery lists them.
METHODS: tuple[AuthMethod, ...] = (
    AuthMethod("client_secret_basic", uses_secret=True),
    AuthMethod("client_secret_post", uses_secret=True),
    # OIDC Core §9: an HMAC assertion keyed with the client secret. HS256 only: a longer MAC
    # would add nothing with a 256-bit secret, and one algorithm is one less to get wrong.
    AuthMethod("client_secret_jwt", uses_secret=True, assertion=True, seals_secret=True,
               signing_algs=("HS256",)),
    AuthMethod("private_key_jwt", assertion=True, needs_keys=True,
               signing_algs=("RS256", "ES256", "PS256")),
    AuthMethod("none"),
)
BY_NAME: dict[str, AuthMethod] = {m.name: m for m in METHODS}

AUTH_METHODS: list[str] = [m.name for m in METHODS]
#: Methods for which the provider makes (and rotates) a client secret.
SECRET_METHODS: tuple[str, ...] = tuple(m.name for m in METHODS if m.uses_secret)
#: Methods that authenticate the client (every one but ``none``): introspection needs these.
CONFIDENTIAL_METHODS: list[str] = [m.name for m in METHODS if m.name != "none"]
#: Methods checked by an assertion verifier registered with Authlib.
ASSERTION_METHODS: list[str] = [m.name for m in METHODS if m.assertion]
DEFAULT_METHOD = "client_secret_basic"

#: Everything discovery publishes as ``token_endpoint_auth_signing_alg_values_supported``.
CLIENT_ASSERTION_ALGS: list[str] = [alg for m in METHODS for alg in m.signing_algs]


def uses_secret(method: str) -> bool:
    found = BY_NAME.get(method)
    return bool(found and found.uses_secret)


def needs_keys(method: str) -> bool:
    found = BY_NAME.get(method)
    return bool(found and found.needs_keys)


def seals_secret(method: str) -> bool:
    found = BY_NAME.get(method)
    return bool(found and found.seals_secret)
