"""Registering a relying party: one function for the CLI, admin pages and RFC 7591."""

from __future__ import annotations

from collections.abc import Callable

from idp import outbound
from idp.audit import audit
from idp.oidc.clients import ClientMetadataError, ClientSpec, build_client, validate_spec
from idp.pairwise import fetch_sector_document
from idp.store.models import Client


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


def register_client(svc, spec: ClientSpec, *, actor: str) -> tuple[Client, str | None]:
    settings = svc.settings
    sector = validate_spec(spec, sector_fetcher(settings),
                           allow_http_sector=settings.allow_http_sector_identifier,
                           check_url=outbound_url_checker(settings))
    row, secret = build_client(spec, sector)
    with svc.db.session() as s:
        s.add(row)
        s.flush()
        audit(s, "client.created", actor=actor, client_id=row.client_id, sector=row.sector)
    return row, secret
