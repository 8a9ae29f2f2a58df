"""Pairwise pseudonymous subject identifiers (OpenID Connect Core §8.1). Pure: no Flask.

``sub = base64url(HMAC-SHA-256(pairwise_secret, sector || 0x00 || account_id))``: stable for
one account at one sector, unlinkable across sectors without the secret, and derived from the
account (never from a card certificate) so it survives card renewal and school transfer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from idp import outbound
from idp.outbound import OutboundPolicy


class SectorError(ValueError):
    """The client's sector cannot be determined; maps to ``invalid_client_metadata``."""


def pairwise_sub(secret: str | bytes, sector: str, account_id: str) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, sector.encode() + b"\x00" + account_id.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


# Redirect hosts that say nothing about who runs the app: any native app on any machine can
# listen on loopback, and an IP literal is not a name anyone owns. Such a client is a sector
# of its own (see own_sector), unless it proves a shared sector with a sector_identifier_uri.
LOOPBACK_NAMES = {"localhost", "localhost."}


def is_unowned_host(host: str) -> bool:
    """Loopback names and IP literals (v4 or v6, bracketed or not)."""
    if host.lower() in LOOPBACK_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def own_sector(client_id: str) -> str:
    """The sector of a client that shares it with no one. The ``client:`` prefix holds a
    colon, which no host name can, so no other client can claim it by its redirect host."""
    return "client:" + client_id


def redirect_hosts(redirect_uris: Iterable[str]) -> set[str]:
    return {(urlsplit(uri).hostname or "").lower() for uri in redirect_uris}


def determine_sector(
    redirect_uris: list[str],
    sector_identifier_uri: str | None,
    fetch_json: Callable[[str], object] | None = None,
    *,
    allow_http: bool = False,
) -> str | None:
    """The sector a client's subjects are computed for (OIDC Core §8.1).

    With a ``sector_identifier_uri`` the sector is its host and the document it points to must
    be a JSON array containing every redirect URI. Without one, all redirect URIs must share a
    single host; when that host is loopback or an IP literal the answer is None: the client
    is its own sector (:func:`own_sector` of its client id), so two native apps on
    ``http://127.0.0.1/cb`` never see the same ``sub``.
    """
    if not redirect_uris:
        raise SectorError("at least one redirect_uri is required")
    if sector_identifier_uri:
        parts = urlsplit(sector_identifier_uri)
        if parts.scheme != "https" and not (allow_http and parts.scheme == "http"):
            raise SectorError("sector_identifier_uri must use https")
        if not parts.hostname:
            raise SectorError("sector_identifier_uri has no host")
        if fetch_json is None:
            raise SectorError("sector_identifier_uri cannot be fetched here")
        try:
            document = fetch_json(sector_identifier_uri)
        except outbound.OutboundError as exc:  # its str() is the generic, safe sentence
            raise SectorError(f"sector_identifier_uri {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - any fetch failure is the same metadata error
            # No detail back to the registrant: it would map the network behind the URL.
            raise SectorError("sector_identifier_uri could not be fetched") from exc
        if not isinstance(document, list) or not all(isinstance(u, str) for u in document):
            raise SectorError("sector_identifier_uri must return a JSON array of URIs")
        missing = [uri for uri in redirect_uris if uri not in document]
        if missing:
            raise SectorError(f"sector_identifier_uri does not list {missing[0]}")
        return parts.hostname.lower()
    hosts = redirect_hosts(redirect_uris)
    if len(hosts) != 1 or "" in hosts:
        raise SectorError(
            "redirect URIs on more than one host need a sector_identifier_uri"
        )
    host = hosts.pop()
    return None if is_unowned_host(host) else host


def fetch_sector_document(url: str, policy: OutboundPolicy) -> object:
    """Fetch a sector identifier document through the guarded fetcher (idp.outbound)."""
    return outbound.fetch_json(url, policy)
