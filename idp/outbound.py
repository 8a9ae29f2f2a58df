"""The one guarded way the provider fetches a URL that someone else chose (a relying party's
``jwks_uri`` or ``sector_identifier_uri``, and any such URL added later). Pure: no Flask.

A registrant controls these URLs, so without a guard the provider would be a proxy into the
school board's network (server-side request forgery). The guard:

* https only, unless the caller allows http (development/test, where the code always has);
* the host is resolved ONCE and every address it resolves to must be public: loopback,
  private, link-local, CGNAT (100.64/10), multicast, unspecified, reserved, ULA (fc00::/7)
  and the IPv4-mapped / 6to4 / NAT64 spellings of those are refused, unless the host or the
  address is on the operator's allow-list (``IDP_OUTBOUND_ALLOW``: an RP on the intranet);
* the connection goes to the address that was checked (no second DNS lookup, so a name that
  re-resolves to 127.0.0.1 — DNS rebinding — does not get through), while TLS SNI,
  certificate checking and the Host header keep the original name;
* no redirects, a small body (64 KiB), a time limit for the whole exchange;
* errors reach the registrant as one generic sentence; the detail goes to the log only, so
  the fetcher cannot be used to map which internal ports answer.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi
import structlog
import urllib3

log = structlog.get_logger("idp.outbound")

MAX_BYTES = 64 * 1024
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                        r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?$")

NOT_ALLOWED = "is not allowed: it must be a public https address"
NOT_FETCHED = "could not be fetched"


class OutboundError(ValueError):
    """A refused or failed fetch. ``str()`` is the generic sentence safe to show a registrant;
    ``detail`` is for the log."""

    def __init__(self, public: str, detail: str) -> None:
        super().__init__(public)
        self.detail = detail


@dataclass(frozen=True)
class OutboundPolicy:
    allow_http: bool = False
    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[IPNetwork, ...] = ()
    timeout: float = 5.0
    max_bytes: int = MAX_BYTES
    ca_file: str | None = None  # None: the certifi bundle


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to call it (``host``)."""

    scheme: str
    host: str
    port: int
    path: str
    address: IPAddress

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


def parse_allow_list(entries: Iterable[str]) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    """``IDP_OUTBOUND_ALLOW`` entries → (host names, networks); ValueError names a bad one."""
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip().lower()
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        if not _HOST_NAME.match(entry):
            raise ValueError(f"{raw!r} is neither a host name nor an IP address/CIDR")
        hosts.add(entry.rstrip("."))
    return frozenset(hosts), tuple(networks)


def policy_from_settings(settings: Any, *, http: bool, timeout: float | None = None
                         ) -> OutboundPolicy:
    """The policy for one kind of fetch. ``http`` is what the caller would allow outside
    production; in production it is always https only."""
    hosts, networks = parse_allow_list(settings.outbound_allow)
    return OutboundPolicy(allow_http=http and settings.env != "production",
                          allow_hosts=hosts, allow_networks=networks,
                          timeout=timeout if timeout is not None else 5.0)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_internal(address: IPAddress) -> bool:
    """Whether an address belongs to a network the provider must not be made to reach."""
    inner = _embedded_ipv4(address)
    if inner is not None and is_internal(inner):
        return True
    return (address.is_loopback or address.is_private or address.is_link_local
            or address.is_multicast or address.is_unspecified or address.is_reserved
            or address in _CGNAT or not address.is_global)


def _allowed(host: str, address: IPAddress, policy: OutboundPolicy) -> bool:
    if host in policy.allow_hosts:
        return True
    candidates = [address, _embedded_ipv4(address)]
    if any(a is not None and a in net for a in candidates for net in policy.allow_networks):
        return True
    return not is_internal(address)


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise OutboundError(NOT_FETCHED, f"cannot resolve {host}: {exc}") from exc
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise OutboundError(NOT_FETCHED, f"{host} has no address")
    return found


def check_url(url: str, policy: OutboundPolicy) -> Target:
    """Check a URL against the policy and resolve it once; the Target says where to connect.
    Registration calls this for URLs it stores but does not fetch yet (``jwks_uri``)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except (ValueError, TypeError) as exc:
        raise OutboundError(NOT_ALLOWED, f"unparsable URL: {exc}") from exc
    schemes = ("https", "http") if policy.allow_http else ("https",)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in schemes or not host or parts.username or parts.password:
        raise OutboundError(NOT_ALLOWED, f"scheme/host/userinfo refused: {url}")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(host, port)
    # Every address must pass: otherwise a name with one public and one internal address
    # would get through on the public one and be connected to on the other.
    refused = [a for a in addresses if not _allowed(host, a, policy)]
    if refused:
        log.warning("outbound.refused", url=url, address=str(refused[0]))
        raise OutboundError(NOT_ALLOWED, f"{host} resolves to refused {refused[0]}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, addresses[0])


def _pool(target: Target, policy: OutboundPolicy) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=policy.timeout, read=policy.timeout)
    common = {"port": target.port, "timeout": timeout, "retries": False, "maxsize": 1}
    if target.scheme == "http":
        return urllib3.HTTPConnectionPool(str(target.address), **common)
    context = ssl.create_default_context(cafile=policy.ca_file or certifi.where())
    return urllib3.HTTPSConnectionPool(
        str(target.address), ssl_context=context, server_hostname=target.host,
        assert_hostname=target.host, cert_reqs="CERT_REQUIRED", **common)


def _read_limited(response: urllib3.BaseHTTPResponse, policy: OutboundPolicy,
                  deadline: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise OutboundError(NOT_FETCHED, f"declared size {declared} too large")
    body = bytearray()
    while chunk := response.read1(8192):
        body += chunk
        if len(body) > policy.max_bytes:
            raise OutboundError(NOT_FETCHED, "body larger than the limit")
        if time.monotonic() > deadline:  # a slow trickle must not hold a worker
            raise OutboundError(NOT_FETCHED, "time limit reached")
    return bytes(body)


def fetch_bytes(url: str, policy: OutboundPolicy) -> bytes:
    """GET a checked URL; the body (at most ``policy.max_bytes``) of a 200 answer."""
    target = check_url(url, policy)
    deadline = time.monotonic() + policy.timeout
    pool = _pool(target, policy)
    try:
        response = pool.urlopen(
            "GET", target.path, redirect=False, retries=False, preload_content=False,
            assert_same_host=False, headers={
                "Host": target.host_header, "Accept": "application/json",
                "User-Agent": "Mynagate"})
        try:
            if response.status != 200:
                # A redirect is refused like any other non-200: following it would
                # re-open everything check_url just closed.
                raise OutboundError(NOT_FETCHED, f"HTTP {response.status}")
            return _read_limited(response, policy, deadline)
        finally:
            response.release_conn()
    except OutboundError as exc:
        log.warning("outbound.refused", url=url, address=str(target.address),
                    detail=exc.detail)
        raise
    except (urllib3.exceptions.HTTPError, OSError, ssl.SSLError) as exc:
        log.warning("outbound.failed", url=url, address=str(target.address),
                    detail=repr(exc))
        raise OutboundError(NOT_FETCHED, repr(exc)) from exc
    finally:
        pool.close()


def fetch_json(url: str, policy: OutboundPolicy) -> object:
    body = fetch_bytes(url, policy)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OutboundError(NOT_FETCHED, "not JSON") from exc
