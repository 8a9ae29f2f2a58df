"""The client metadata vocabulary: RFC 7591 names (plus a few Mynagate extensions) to and
from the registry's :class:`ClientSpec`, as the admin pages, the admin API and dynamic
registration read and show a client.

Only types are checked here; ``registry.validate_spec`` checks the rest, so every way in
(JSON, form, command line) is held to the same rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from idp.clients.auth_methods import DEFAULT_METHOD
from idp.clients.registry import ClientMetadataError, ClientSpec
from idp.store.models import Client

ACCESS_LIFETIME_RANGE = (60, 24 * 3600)
REFRESH_LIFETIME_RANGE = (300, 90 * 24 * 3600)


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
        or DEFAULT_METHOD,
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
        raise ClientMetadataError("logo_uri must be an https URL", reason="logo_uri",
                                  value=logo)
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
    data.update(enabled=row.enabled, sector=row.sector, created_at=_iso(row.created_at),
                allow_graduates=bool(row.allow_graduates))
    return data
