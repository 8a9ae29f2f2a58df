"""Relying parties: the Authlib client adapter and the one registration function that the
command line, the admin pages and dynamic registration all call."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin, scope_to_list

from idp.keys import ALGORITHMS as SIGNING_ALGORITHMS
from idp.oidc.scopes import SUPPORTED_SCOPES
from idp.pairwise import SectorError, determine_sector, own_sector
from idp.settings import LOOPBACK_HOSTS
from idp.signin.context import ACR_LEVELS
from idp.store.models import Client

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
ID_TOKEN_ALGS = list(SIGNING_ALGORITHMS)  # what the provider holds keys for
# Accepted for private_key_jwt assertions (and published as such in discovery).
CLIENT_ASSERTION_ALGS = ["RS256", "ES256", "PS256"]


class ClientMetadataError(ValueError):
    """Maps to RFC 7591 ``invalid_client_metadata`` / ``invalid_redirect_uri``."""

    def __init__(self, message: str, code: str = "invalid_client_metadata") -> None:
        super().__init__(message)
        self.code = code


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class OAuthClient(ClientMixin):
    """A read-only view of a :class:`Client` row in the shape Authlib expects."""

    def __init__(self, row: Client) -> None:
        self.row = row
        self.client_id = row.client_id

    # -- ClientMixin
    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.row.redirect_uris or []
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return ""
        # None (a row from before scopes were stored) means every scope; an empty list
        # means none — never read [] as "all".
        scopes = self.row.scopes
        allowed = set(SUPPORTED_SCOPES if scopes is None else scopes)
        return " ".join(s for s in scope_to_list(scope) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string match (RFC 9700 §4.1.3): no prefix or pattern matching.
        return redirect_uri in (self.row.redirect_uris or [])

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row.client_secret_hash
        return bool(stored) and hmac.compare_digest(stored, hash_secret(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.row.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in (self.row.grant_types or [])

    # -- what the rest of the provider needs
    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"post_logout_redirect_uris": self.row.post_logout_redirect_uris or []}

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def sector(self) -> str:
        return self.row.sector

    @property
    def is_public(self) -> bool:
        return self.row.token_endpoint_auth_method == "none"


@dataclass
class ClientSpec:
    name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    token_endpoint_auth_method: str = "client_secret_basic"
    sector_identifier_uri: str | None = None
    jwks: dict | None = None
    jwks_uri: str | None = None
    grant_types: list[str] | None = None
    scopes: list[str] | None = None
    id_token_signed_response_alg: str = "RS256"
    required_acr: str | None = None
    logo_uri: str | None = None
    contacts: list[str] | None = None
    access_token_lifetime: int | None = None
    refresh_token_lifetime: int | None = None


def _check_uri(uri: str, what: str, *, allow_http_loopback: bool = True) -> None:
    if not isinstance(uri, str) or len(uri) > 500:
        raise ClientMetadataError(f"{what}: not a URI", "invalid_redirect_uri")
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise ClientMetadataError(f"{what} must not contain a fragment: {uri}",
                                  "invalid_redirect_uri")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and allow_http_loopback and parts.hostname in LOOPBACK_HOSTS:
        return
    raise ClientMetadataError(f"{what} must be https (http only on loopback): {uri}",
                              "invalid_redirect_uri")


def scopes_within(requested: list[str] | None, allowed: list[str], granted_by: str
                  ) -> list[str]:
    """The scopes a self-registered client gets under a ceiling (an initial access token's
    list, or the client's own scopes on RFC 7592 update).

    Missing or empty means the ceiling itself — never "every supported scope". Asking for
    more is refused (``invalid_client_metadata``), not silently reduced: a registrant should
    know at once that its app will not get what it asked for.
    """
    if not allowed:
        raise ClientMetadataError(f"{granted_by} allows no scopes; ask the platform "
                                  "administrator for a new one")
    if not requested:
        return list(allowed)
    refused = [s for s in requested if s not in allowed]
    if refused:
        raise ClientMetadataError(f"scope(s) not allowed by {granted_by}: {' '.join(refused)}")
    return list(requested)


def default_client_name(spec: ClientSpec) -> None:
    """RFC 7591 §2: client_name is optional; without one the app is named by the host of
    its first redirect URI (what a student would recognise on the consent page)."""
    if not spec.name and spec.redirect_uris:
        first = spec.redirect_uris[0]
        host = urlsplit(first).hostname if isinstance(first, str) else None
        spec.name = (host or "")[:200]


def validate_spec(spec: ClientSpec, fetch_json: Callable[[str], object] | None,
                  *, allow_http_sector: bool = False,
                  check_url: Callable[[str], None] | None = None) -> str | None:
    """Check a client's metadata; returns its pairwise sector, or None when the client is a
    sector of its own (loopback / IP-literal redirect URIs, see pairwise.determine_sector)."""
    if not spec.name or len(spec.name) > 200:
        raise ClientMetadataError("client name is required (at most 200 characters)")
    if not spec.redirect_uris:
        raise ClientMetadataError("at least one redirect_uri is required", "invalid_redirect_uri")
    for uri in spec.redirect_uris:
        _check_uri(uri, "redirect_uri")
    for uri in spec.post_logout_redirect_uris:
        _check_uri(uri, "post_logout_redirect_uri")
    if spec.token_endpoint_auth_method not in AUTH_METHODS:
        raise ClientMetadataError(
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    if spec.token_endpoint_auth_method == "private_key_jwt" and not (spec.jwks or spec.jwks_uri):
        raise ClientMetadataError("private_key_jwt needs jwks or jwks_uri")
    if spec.jwks and spec.jwks_uri:
        raise ClientMetadataError("give jwks or jwks_uri, not both")
    if spec.jwks_uri:
        _check_uri(spec.jwks_uri, "jwks_uri")
        if check_url is not None:  # the outbound guard: refused now, not at first use
            check_url(spec.jwks_uri)
    if spec.jwks is not None:
        from joserfc.jwk import KeySet

        try:
            KeySet.import_key_set(spec.jwks)
        except Exception as exc:  # noqa: BLE001 - any parse failure is bad metadata
            raise ClientMetadataError(f"jwks is not a valid JWK set: {exc}") from exc
    if spec.id_token_signed_response_alg not in ID_TOKEN_ALGS:
        raise ClientMetadataError(
            f"id_token_signed_response_alg must be one of {', '.join(ID_TOKEN_ALGS)}")
    if spec.required_acr and spec.required_acr not in ACR_LEVELS:
        raise ClientMetadataError(f"unknown acr {spec.required_acr}")
    for scope in spec.scopes or []:
        if scope not in SUPPORTED_SCOPES:
            raise ClientMetadataError(f"unknown scope {scope}", "invalid_client_metadata")
    for grant in spec.grant_types or []:
        if grant not in ("authorization_code", "refresh_token"):
            raise ClientMetadataError(f"unsupported grant type {grant}")
    try:
        return determine_sector(spec.redirect_uris, spec.sector_identifier_uri, fetch_json,
                                allow_http=allow_http_sector)
    except SectorError as exc:
        raise ClientMetadataError(str(exc)) from exc


def build_client(spec: ClientSpec, sector: str | None) -> tuple[Client, str | None]:
    """A new :class:`Client` row and its secret (shown once; only its hash is kept).
    ``sector`` None: the client is its own sector."""
    secret = None
    if spec.token_endpoint_auth_method in ("client_secret_basic", "client_secret_post"):
        secret = secrets.token_urlsafe(32)
    # Hex, not base64url: an id starting with "-" reads as an option on a command line.
    client_id = secrets.token_hex(16)
    row = Client(
        client_id=client_id,
        client_secret_hash=hash_secret(secret) if secret else None,
        name=spec.name,
        redirect_uris=list(spec.redirect_uris),
        post_logout_redirect_uris=list(spec.post_logout_redirect_uris),
        sector_identifier_uri=spec.sector_identifier_uri,
        sector=sector if sector is not None else own_sector(client_id),
        token_endpoint_auth_method=spec.token_endpoint_auth_method,
        grant_types=list(spec.grant_types or ["authorization_code", "refresh_token"]),
        scopes=list(SUPPORTED_SCOPES if spec.scopes is None else spec.scopes),
        jwks=spec.jwks,
        jwks_uri=spec.jwks_uri,
        id_token_signed_response_alg=spec.id_token_signed_response_alg,
        required_acr=spec.required_acr,
        logo_uri=spec.logo_uri,
        contacts=list(spec.contacts or []),
        access_token_lifetime=spec.access_token_lifetime,
        refresh_token_lifetime=spec.refresh_token_lifetime,
    )
    return row, secret


def rotate_secret(row: Client) -> str:
    secret = secrets.token_urlsafe(32)
    row.client_secret_hash = hash_secret(secret)
    return secret
