"""Registering a relying party: one function for the CLI, admin pages and RFC 7591."""

from __future__ import annotations

from idp.audit import audit
from idp.oidc.clients import ClientSpec, build_client, validate_spec
from idp.pairwise import fetch_sector_document
from idp.store.models import Client


def register_client(svc, spec: ClientSpec, *, actor: str) -> tuple[Client, str | None]:
    settings = svc.settings

    def fetch(url: str) -> object:
        return fetch_sector_document(url, timeout=settings.sector_fetch_timeout)

    sector = validate_spec(spec, fetch, allow_http_sector=settings.allow_http_sector_identifier)
    row, secret = build_client(spec, sector)
    with svc.db.session() as s:
        s.add(row)
        s.flush()
        audit(s, "client.created", actor=actor, client_id=row.client_id, sector=row.sector)
    return row, secret
