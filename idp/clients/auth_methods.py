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


# Order matters: it is the order Authlib tries them in, and the order discovery lists them.
METHODS: tuple[AuthMethod, ...] = (
    AuthMethod("client_secret_basic", uses_secret=True),
    AuthMethod("client_secret_post", uses_secret=True),
    AuthMethod("private_key_jwt", assertion=True, needs_keys=True),
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

#: Signature algorithms accepted for ``private_key_jwt`` assertions (published in discovery).
PRIVATE_KEY_ASSERTION_ALGS: list[str] = ["RS256", "ES256", "PS256"]
#: Everything discovery publishes as ``token_endpoint_auth_signing_alg_values_supported``.
CLIENT_ASSERTION_ALGS: list[str] = list(PRIVATE_KEY_ASSERTION_ALGS)


def uses_secret(method: str) -> bool:
    found = BY_NAME.get(method)
    return bool(found and found.uses_secret)


def needs_keys(method: str) -> bool:
    found = BY_NAME.get(method)
    return bool(found and found.needs_keys)
