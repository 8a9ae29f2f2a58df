"""``/healthz``, ``/readyz`` and ``/metrics``: for load balancers, orchestrators and
Prometheus, not people.

All three answer without a session (the app lists :data:`SESSIONLESS_PATHS` to the session
interface, so no store read and no cookie), with ``Cache-Control: no-store``, exempt from
CSRF (they are GETs anyway) and from the throttle (which only sign-ins use). Their answers
are built here, never through the error pages, so a probe cannot end up in a template or an
exception handler that needs the session or the database.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from functools import lru_cache

from flask import Blueprint, Response, request

from idp.metrics import CONTENT_TYPE, exposition
from idp.ops.readiness import run_checks
from idp.services import services

bp = Blueprint("ops", __name__)

SESSIONLESS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: Seconds a load balancer should wait before asking a not-ready instance again.
RETRY_AFTER = "5"


def _answer(body: dict | str, status: int = 200, mimetype: str = "application/json",
            **headers: str) -> Response:
    text = json.dumps(body) if isinstance(body, dict) else body
    response = Response(text, status=status, mimetype=mimetype)
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers)
    return response


@bp.get("/healthz")
def healthz() -> Response:
    """Alive: the process answers. No backend is asked, so a database or Redis outage never
    makes an orchestrator restart every instance at once."""
    return _answer({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready for traffic: the database, the short-lived store, the signing keys and (with
    CRLs configured) fresh revocation data. 503 with ``Retry-After`` when any fails."""
    try:
        results = run_checks(services())
    except Exception:  # noqa: BLE001 - run_checks does not raise; a probe never gets a 500
        return _answer({"status": "failed", "checks": {}}, 503, **{"Retry-After": RETRY_AFTER})
    ready = all(result.ok for result in results)
    body = {"status": "ok" if ready else "failed",
            "checks": {result.name: result.as_json() for result in results}}
    if ready:
        return _answer(body)
    return _answer(body, 503, **{"Retry-After": RETRY_AFTER})


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network,
                                               ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def address_allowed(address: str | None, cidrs: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in _networks(cidrs))


def token_presented(expected: str) -> bool:
    if not expected:
        return False
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), expected.encode())


@bp.get("/metrics")
def metrics() -> Response:
    """The Prometheus exposition, for allowed addresses or the bearer token; anyone else is
    told there is nothing here (404), so the endpoint is not advertised to scanners."""
    svc = services()
    settings = svc.settings
    if not (token_presented(settings.metrics_token)
            or address_allowed(request.remote_addr, tuple(settings.metrics_allow))):
        return _answer({"error": "not_found"}, 404)
    return _answer(exposition(svc.card.crl_ages).decode(), mimetype=CONTENT_TYPE.split(";")[0],
                   **{"Content-Type": CONTENT_TYPE})
