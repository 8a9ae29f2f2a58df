"""The client registry: what a relying party may be registered with, and the one place that
creates, updates, rotates and deletes it.

The command line, the admin pages, the admin API and dynamic registration (RFC 7591/7592) all
call these functions; they differ only in how they parse their input (``idp.clients.metadata``
turns RFC 7591 JSON into a :class:`ClientSpec`). The pairwise sector of a client never changes
after registration: that would silently give every student a new ``sub`` at that app.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.orm import Session

from idp import outbound, pairwise
from idp.audit import audit
from idp.clients.auth_methods import AUTH_METHODS, needs_keys, seals_secret, uses_secret
from idp.keys import ALGORITHMS as SIGNING_ALGORITHMS
from idp.pairwise import SectorError, determine_sector, fetch_sector_document, own_sector
from idp.scopes import SUPPORTED_SCOPES
from idp.services import services
from idp.settings import LOOPBACK_HOSTS
from idp.signin.context import ACR_LEVELS
from idp.store.models import Client

if TYPE_CHECKING:
    from idp.services import Services

ID_TOKEN_ALGS = list(SIGNING_ALGORITHMS)  # what the provider holds keys for
DEFAULT_GRANT_TYPES = ["authorization_code", "refresh_token"]


class ClientMetadataError(ValueError):
    """Maps to RFC 7591 ``invalid_client_metadata`` / ``invalid_redirect_uri``."""

    def __init__(self, message: str, code: str = "invalid_client_metadata", *,
                 reason: str | None = None, value: str = "") -> None:
        super().__init__(message)
        self.code = code
        # For the admin form's words (idp.admin.messages.client_error): which rule, and the
        # value that broke it. The API keeps the RFC 7591 code and the English message.
        self.reason = reason
        self.value = value


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# A client_secret_jwt client's secret is its HMAC key, so the provider must hold the secret
# itself, not only its hash: it keeps it sealed (AES-256-GCM, the key derived with HKDF from
# settings.secret_key, the client id as associated data so a sealed value copied onto another
# row opens nowhere). A database dump alone gives no secret; changing secret_key means
# rotating every client_secret_jwt secret.
_SEAL_PREFIX = "v1."


def _seal_key(secret_key: str) -> AESGCM:
    if not secret_key:
        raise ValueError("settings.secret_key is needed to seal a client secret")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"mynagate/clients.secret_sealed/v1").derive(secret_key.encode())
    return AESGCM(key)


def seal_secret(secret: str, client_id: str, secret_key: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = _seal_key(secret_key).encrypt(nonce, secret.encode(), client_id.encode())
    return _SEAL_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def open_sealed_secret(sealed: str | None, client_id: str, secret_key: str) -> str | None:
    """The secret sealed for this client, or None (missing, damaged, another client's, or
    sealed under another secret_key)."""
    if not sealed or not sealed.startswith(_SEAL_PREFIX):
        return None
    try:
        raw = base64.urlsafe_b64decode(sealed[len(_SEAL_PREFIX):])
        plain = _seal_key(secret_key).decrypt(raw[:12], raw[12:], client_id.encode())
    except (InvalidTag, ValueError):
        return None
    return plain.decode()


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
        raise ClientMetadataError(f"{what}: not a URI", "invalid_redirect_uri", reason=what)
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise ClientMetadataError(f"{what} must not contain a fragment: {uri}",
                                  "invalid_redirect_uri", reason=what, value=uri)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and allow_http_loopback and parts.hostname in LOOPBACK_HOSTS:
        return
    raise ClientMetadataError(f"{what} must be https (http only on loopback): {uri}",
                              "invalid_redirect_uri", reason=what, value=uri)


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
    if needs_keys(spec.token_endpoint_auth_method) and not (spec.jwks or spec.jwks_uri):
        raise ClientMetadataError(f"{spec.token_endpoint_auth_method} needs jwks or jwks_uri",
                                  reason="keys_needed", value=spec.token_endpoint_auth_method)
    if spec.jwks and spec.jwks_uri:
        raise ClientMetadataError("give jwks or jwks_uri, not both", reason="keys_both")
    if spec.jwks_uri:
        _check_uri(spec.jwks_uri, "jwks_uri")
        if check_url is not None:  # the outbound guard: refused now, not at first use
            check_url(spec.jwks_uri)
    if spec.jwks is not None:
        from joserfc.jwk import KeySet

        try:
            KeySet.import_key_set(spec.jwks)
        except Exception as exc:  # noqa: BLE001 - any parse failure is bad metadata
            raise ClientMetadataError(f"jwks is not a valid JWK set: {exc}",
                                      reason="jwks") from exc
    if spec.id_token_signed_response_alg not in ID_TOKEN_ALGS:
        raise ClientMetadataError(
            f"id_token_signed_response_alg must be one of {', '.join(ID_TOKEN_ALGS)}")
    if spec.required_acr and spec.required_acr not in ACR_LEVELS:
        raise ClientMetadataError(f"unknown acr {spec.required_acr}")
    for scope in spec.scopes or []:
        if scope not in SUPPORTED_SCOPES:
            raise ClientMetadataError(f"unknown scope {scope}", "invalid_client_metadata")
    for grant in spec.grant_types or []:
        if grant not in DEFAULT_GRANT_TYPES:
            raise ClientMetadataError(f"unsupported grant type {grant}")
    try:
        return determine_sector(spec.redirect_uris, spec.sector_identifier_uri, fetch_json,
                                allow_http=allow_http_sector)
    except SectorError as exc:
        raise ClientMetadataError(
            str(exc), reason="sector" if spec.sector_identifier_uri else "many_hosts",
            value=spec.sector_identifier_uri or "") from exc


def build_client(spec: ClientSpec, sector: str | None, *, secret_key: str = ""
                 ) -> tuple[Client, str | None]:
    """A new :class:`Client` row and its secret (shown once; only its hash is kept, and for
    client_secret_jwt a copy sealed with ``secret_key``). ``sector`` None: the client is its
    own sector."""
    # Hex, not base64url: an id starting with "-" reads as an option on a command line.
    client_id = secrets.token_hex(16)
    row = Client(
        client_id=client_id,
        name=spec.name,
        redirect_uris=list(spec.redirect_uris),
        post_logout_redirect_uris=list(spec.post_logout_redirect_uris),
        sector_identifier_uri=spec.sector_identifier_uri,
        sector=sector if sector is not None else own_sector(client_id),
        token_endpoint_auth_method=spec.token_endpoint_auth_method,
        grant_types=list(spec.grant_types or DEFAULT_GRANT_TYPES),
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
    secret = None
    if uses_secret(spec.token_endpoint_auth_method):
        secret = rotate_secret(row, secret_key)
    return row, secret


def rotate_secret(row: Client, secret_key: str) -> str:
    """A new secret for the row's auth method: its hash, and the sealed copy only when the
    method needs the secret itself (any other method's row keeps none)."""
    secret = secrets.token_urlsafe(32)
    row.client_secret_hash = hash_secret(secret)
    row.secret_sealed = (seal_secret(secret, row.client_id, secret_key)
                         if seals_secret(row.token_endpoint_auth_method) else None)
    return secret


def sector_fetcher(settings) -> Callable[[str], object]:
    """Fetches a sector_identifier_uri document (guarded: idp.outbound)."""
    policy = outbound.policy_from_settings(settings, http=settings.allow_http_sector_identifier,
                                           timeout=settings.sector_fetch_timeout)

    def fetch(url: str) -> object:
        return fetch_sector_document(url, policy)

    return fetch


def outbound_url_checker(settings) -> Callable[[str], None]:
    """Checks a URL the provider will fetch later (jwks_uri) against the outbound policy
    now, so a refused one is refused at registration and not first at sign-in."""
    policy = outbound.policy_from_settings(settings, http=True)

    def check(url: str) -> None:
        try:
            outbound.check_url(url, policy)
        except outbound.OutboundError as exc:
            raise ClientMetadataError(f"jwks_uri {exc}") from exc

    return check


def register_client(svc: Services, spec: ClientSpec, *, actor: str
                    ) -> tuple[Client, str | None]:
    """Validate and store a new client (one transaction, audited); returns the row and its
    secret (None for methods without one)."""
    settings = svc.settings
    sector = validate_spec(spec, sector_fetcher(settings),
                           allow_http_sector=settings.allow_http_sector_identifier,
                           check_url=outbound_url_checker(settings))
    row, secret = build_client(spec, sector, secret_key=settings.secret_key)
    with svc.db.session() as s:
        s.add(row)
        s.flush()
        audit(s, "client.created", actor=actor, client_id=row.client_id, sector=row.sector)
    return row, secret


def update_client(svc: Services, db: Session, row: Client, spec: ClientSpec, *, actor: str
                  ) -> str | None:
    """Replace a client's metadata; returns a new secret when the auth method now needs one
    it did not have (shown once)."""
    sector = validate_spec(spec, sector_fetcher(svc.settings),
                           allow_http_sector=svc.settings.allow_http_sector_identifier,
                           check_url=outbound_url_checker(svc.settings))
    if sector is None:  # loopback / IP-literal redirects: the client's own sector ...
        # ... except for a client registered before that rule, whose sector is the loopback
        # host itself: keep it, or every student would get a new sub at that app.
        legacy = pairwise.is_unowned_host(row.sector)
        sector = row.sector if legacy else pairwise.own_sector(row.client_id)
    if sector != row.sector:
        raise ClientMetadataError(
            f"the pairwise sector would change from {row.sector} to {sector}; that would give "
            "every student a new sub at this app. Register a new client instead.")
    new_secret = None
    method = spec.token_endpoint_auth_method
    row.token_endpoint_auth_method = method
    if uses_secret(method) and (not row.client_secret_hash
                                or (seals_secret(method) and not row.secret_sealed)):
        # A hashed secret cannot be sealed afterwards: a client moving to client_secret_jwt
        # gets a new one.
        new_secret = rotate_secret(row, svc.settings.secret_key)
    elif not uses_secret(method):
        row.client_secret_hash = None
    if not seals_secret(method):
        row.secret_sealed = None
    row.name = spec.name
    row.redirect_uris = list(spec.redirect_uris)
    row.post_logout_redirect_uris = list(spec.post_logout_redirect_uris)
    row.sector_identifier_uri = spec.sector_identifier_uri
    row.grant_types = list(spec.grant_types or DEFAULT_GRANT_TYPES)
    if spec.scopes is not None:
        row.scopes = list(spec.scopes)
    row.jwks = spec.jwks
    row.jwks_uri = spec.jwks_uri
    row.id_token_signed_response_alg = spec.id_token_signed_response_alg
    row.required_acr = spec.required_acr
    row.logo_uri = spec.logo_uri
    row.contacts = list(spec.contacts or [])
    row.access_token_lifetime = spec.access_token_lifetime
    row.refresh_token_lifetime = spec.refresh_token_lifetime
    audit(db, "client.updated", actor=actor, client_id=row.client_id,
          secret_issued=bool(new_secret))
    return new_secret


def set_enabled(db: Session, row: Client, enabled: bool, *, actor: str) -> None:
    """Disabling takes effect at once: the token, userinfo and introspection endpoints look
    at ``enabled`` on every request."""
    row.enabled = enabled
    audit(db, "client.enabled" if enabled else "client.disabled", actor=actor,
          client_id=row.client_id)


def set_allow_graduates(db: Session, row: Client, allowed: bool, *, actor: str) -> None:
    """Whether graduates may keep signing in here (in their grace period). An admin's
    choice only: dynamic registration never sets it. A change shows everywhere at once (the
    client cache follows committed changes)."""
    if row.allow_graduates != allowed:
        row.allow_graduates = allowed
        audit(db, "client.allow_graduates", actor=actor, client_id=row.client_id,
              allowed=allowed)


def check_admin_choices(data: Any) -> bool | None:
    """``allow_graduates`` from the admin API's JSON (None: not given); checked before a
    client is registered, so a bad value registers nothing."""
    allowed = data.get("allow_graduates") if isinstance(data, dict) else None
    if allowed is not None and not isinstance(allowed, bool):
        raise ClientMetadataError("allow_graduates must be true or false")
    return allowed


def admin_choices(db: Session, row: Client, data: Any, *, actor: str) -> Client:
    """What only an admin sets on a client (the admin API's JSON): ``allow_graduates``."""
    allowed = check_admin_choices(data)
    if allowed is not None:
        set_allow_graduates(db, row, allowed, actor=actor)
    return row


def rotate(db: Session, row: Client, *, actor: str) -> str:
    """A new secret for a secret-using client (shown once; the old one stops at once; a
    client_secret_jwt one sealed with the app's secret_key)."""
    if not uses_secret(row.token_endpoint_auth_method):
        raise ClientMetadataError(
            f"a {row.token_endpoint_auth_method} client has no secret to rotate")
    secret = rotate_secret(row, services().settings.secret_key)
    audit(db, "client.secret_rotated", actor=actor, client_id=row.client_id)
    return secret


def delete_client(db: Session, row: Client, *, actor: str) -> None:
    """Delete a client; its consents and tokens go with it (ON DELETE CASCADE). Disclosure
    history stays, so students still see what that app once received."""
    client_id = row.client_id
    db.delete(row)
    audit(db, "client.deleted", actor=actor, client_id=client_id)
