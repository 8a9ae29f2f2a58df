"""Relying parties as the admin pages, the admin API and RFC 7591/7592 see them.

One metadata shape (RFC 7591 names, plus a few Mynagate extensions) is turned into the core's
:class:`ClientSpec`; creating goes through the core's one ``register_client``; editing
re-validates with the core's ``validate_spec``. The pairwise sector of a client never changes
after registration: that would silently give every student a new ``sub`` at that app.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from idp import pairwise
from idp.accounts.roles import Actor
from idp.audit import audit
from idp.oidc.clients import ClientMetadataError, ClientSpec, rotate_secret, validate_spec
from idp.store.models import Client

ACCESS_LIFETIME_RANGE = (60, 24 * 3600)
REFRESH_LIFETIME_RANGE = (300, 90 * 24 * 3600)
SECRET_METHODS = ("client_secret_basic", "client_secret_post")


def _string(data: dict[str, Any], key: str, *, required: bool = False,
            max_len: int = 500) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise ClientMetadataError(f"{key} is required")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise ClientMetadataError(f"{key} must be a string of at most {max_len} characters")
    return value


def _string_list(data: dict[str, Any], key: str, *, max_items: int = 20) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > max_items or \
            not all(isinstance(v, str) and 0 < len(v) <= 500 for v in value):
        raise ClientMetadataError(f"{key} must be a list of at most {max_items} strings")
    return list(value)


def _lifetime(data: dict[str, Any], key: str, bounds: tuple[int, int]) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or \
            not bounds[0] <= value <= bounds[1]:
        raise ClientMetadataError(f"{key} must be an integer from {bounds[0]} to {bounds[1]}")
    return value


def spec_from_metadata(data: Any, *, name_required: bool = True) -> ClientSpec:
    """RFC 7591 client metadata (JSON object) → :class:`ClientSpec`; type errors are
    ``invalid_client_metadata``, and the core's ``validate_spec`` checks the rest.
    Dynamic registration passes ``name_required=False`` (RFC 7591 §2: optional)."""
    if not isinstance(data, dict):
        raise ClientMetadataError("the body must be a JSON object of client metadata")
    scope = _string(data, "scope", max_len=200)
    scopes = scope.split() if scope else _string_list(data, "scopes")
    jwks = data.get("jwks")
    if jwks is not None and not isinstance(jwks, dict):
        raise ClientMetadataError("jwks must be a JSON object (a JWK set)")
    response_types = _string_list(data, "response_types")
    if response_types is not None and response_types != ["code"]:
        raise ClientMetadataError("only response_types [\"code\"] is supported")
    redirect_uris = _string_list(data, "redirect_uris") or []
    return ClientSpec(
        name=_string(data, "client_name", required=name_required, max_len=200) or "",
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=_string_list(data, "post_logout_redirect_uris") or [],
        token_endpoint_auth_method=_string(data, "token_endpoint_auth_method", max_len=40)
        or "client_secret_basic",
        sector_identifier_uri=_string(data, "sector_identifier_uri"),
        jwks=jwks,
        jwks_uri=_string(data, "jwks_uri"),
        grant_types=_string_list(data, "grant_types"),
        scopes=scopes,
        id_token_signed_response_alg=_string(data, "id_token_signed_response_alg", max_len=10)
        or "RS256",
        required_acr=_string(data, "required_acr", max_len=100),
        logo_uri=_logo(data),
        contacts=_string_list(data, "contacts"),
        access_token_lifetime=_lifetime(data, "access_token_lifetime", ACCESS_LIFETIME_RANGE),
        refresh_token_lifetime=_lifetime(data, "refresh_token_lifetime",
                                         REFRESH_LIFETIME_RANGE),
    )


def _logo(data: dict[str, Any]) -> str | None:
    logo = _string(data, "logo_uri")
    if logo and not logo.startswith("https://"):
        raise ClientMetadataError("logo_uri must be an https URL")
    return logo


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def client_metadata(row: Client) -> dict[str, Any]:
    """The client as RFC 7591 metadata (never any secret)."""
    return {
        "client_id": row.client_id,
        "client_name": row.name,
        "redirect_uris": list(row.redirect_uris or []),
        "post_logout_redirect_uris": list(row.post_logout_redirect_uris or []),
        "sector_identifier_uri": row.sector_identifier_uri,
        "subject_type": "pairwise",
        "token_endpoint_auth_method": row.token_endpoint_auth_method,
        "grant_types": list(row.grant_types or []),
        "response_types": ["code"],
        "scope": " ".join(row.scopes or []),
        "jwks": row.jwks,
        "jwks_uri": row.jwks_uri,
        "id_token_signed_response_alg": row.id_token_signed_response_alg,
        "required_acr": row.required_acr,
        "logo_uri": row.logo_uri,
        "contacts": list(row.contacts or []),
        "access_token_lifetime": row.access_token_lifetime,
        "refresh_token_lifetime": row.refresh_token_lifetime,
        "client_id_issued_at": int(row.created_at.timestamp()) if row.created_at else None,
    }


def admin_view(row: Client) -> dict[str, Any]:
    data = client_metadata(row)
    data.update(enabled=row.enabled, sector=row.sector, created_at=_iso(row.created_at))
    return data


def update_client(svc, db: Session, row: Client, spec: ClientSpec, *, actor: str
                  ) -> str | None:
    """Replace a client's metadata; returns a new secret when the auth method now needs one
    it did not have (shown once)."""
    from idp.oidc.registration_core import outbound_url_checker, sector_fetcher

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
    if method in SECRET_METHODS and not row.client_secret_hash:
        new_secret = rotate_secret(row)
    elif method not in SECRET_METHODS:
        row.client_secret_hash = None
    row.name = spec.name
    row.redirect_uris = list(spec.redirect_uris)
    row.post_logout_redirect_uris = list(spec.post_logout_redirect_uris)
    row.sector_identifier_uri = spec.sector_identifier_uri
    row.token_endpoint_auth_method = method
    row.grant_types = list(spec.grant_types or ["authorization_code", "refresh_token"])
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


def rotate(db: Session, row: Client, *, actor: str) -> str:
    if row.token_endpoint_auth_method not in SECRET_METHODS:
        raise ClientMetadataError(
            f"a {row.token_endpoint_auth_method} client has no secret to rotate")
    secret = rotate_secret(row)
    audit(db, "client.secret_rotated", actor=actor, client_id=row.client_id)
    return secret


def delete_client(db: Session, row: Client, *, actor: str) -> None:
    """Delete a client; its consents and tokens go with it (ON DELETE CASCADE). Disclosure
    history stays, so students still see what that app once received."""
    client_id = row.client_id
    db.delete(row)
    audit(db, "client.deleted", actor=actor, client_id=client_id)


def actor_label(actor: Actor) -> str:
    return actor.account_id
