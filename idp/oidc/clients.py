"""The Authlib adapter for a relying party: a :class:`Client` row in the shape Authlib's
grants and endpoints expect. Everything else about clients (what they may be registered
with, creating and changing them) is the registry's: ``idp.clients``."""

from __future__ import annotations

import hmac
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, scope_to_list

from idp.clients.registry import hash_secret
from idp.scopes import SUPPORTED_SCOPES
from idp.store.models import Client


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
