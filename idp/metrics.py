"""The provider's Prometheus metrics: the metric objects and the functions that count.

A layer-0 module without Flask, so every room can count (the throttle, the password check,
the card verifier's observer) without importing the web rooms. ``docs/observability.md``
lists every metric, its labels and the alert to set on it; a new metric goes here and there.

Label values are always taken from small fixed vocabularies (a sign-in method, a refusal
code, a Flask endpoint name), never from raw input, so the number of series stays bounded
whatever the requests carry.

Under gunicorn with several workers (``idp serve`` with ``IDP_WORKERS`` > 1) the values live
in per-process files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode),
and :func:`exposition` adds up every worker's. That variable must be set before this module
is first imported: the CLI does it before it builds the app.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: The metrics of this process. Not prometheus-client's global registry: tests build many
#: apps in one process, and nothing else (no library) should appear in our exposition.
REGISTRY = CollectorRegistry(auto_describe=True)

SIGN_INS = Counter(
    "mynagate_sign_ins_total",
    "Sign-in checks by method (password, admin_password, totp, card, pairing) and result "
    "(success or failure, with a reason class for failures).",
    ["method", "result", "reason"], registry=REGISTRY)
TOKENS_ISSUED = Counter(
    "mynagate_tokens_issued_total",
    "Tokens issued at /token, by grant type and kind (access, id, refresh).",
    ["grant_type", "kind"], registry=REGISTRY)
REQUEST_SECONDS = Histogram(
    "mynagate_http_request_duration_seconds",
    "Time to answer a request, by Flask endpoint name (not path) and HTTP method.",
    ["endpoint", "method"], registry=REGISTRY,
    # Sign-ins hash a password with Argon2 (~0.1-0.5 s); the protocol endpoints are fast.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
SERVER_ERRORS = Counter(
    "mynagate_http_server_errors_total",
    "Responses with a 5xx status, by Flask endpoint name and status.",
    ["endpoint", "status"], registry=REGISTRY)
REVOCATION_CHECKS = Counter(
    "mynagate_card_revocation_checks_total",
    "Answers of the card revocation sources: good, revoked, unknown (no fresh authentic "
    "answer: unreachable, stale, not known) or error (the checker itself failed).",
    ["source", "outcome"], registry=REGISTRY)
THROTTLE_HITS = Counter(
    "mynagate_throttle_hits_total",
    "Attempts the throttle made wait, by the counter that was over its allowance.",
    ["kind"], registry=REGISTRY)

SIGN_IN_METHODS = frozenset({"password", "admin_password", "totp", "card", "pairing"})
REVOCATION_SOURCES = frozenset({"crl", "ocsp", "platform"})
REVOCATION_OUTCOMES = frozenset({"good", "revoked", "unknown", "error"})
THROTTLE_KINDS = frozenset({"account", "device", "known_address", "address", "pairing_address"})
GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})
TOKEN_KINDS = (("access_token", "access"), ("id_token", "id"), ("refresh_token", "refresh"))
_WORD = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _word(value: str | None, allowed: frozenset[str] | None = None) -> str:
    """A label value from a fixed vocabulary; anything else counts as ``other`` (a bug, but
    never a new series per request)."""
    if value and (value in allowed if allowed is not None else bool(_WORD.match(value))):
        return value
    return "other"


# ----------------------------------------------------------------------------- counting
def count_sign_in(method: str, reason: str | None = None) -> None:
    """One sign-in check: ``reason`` None is a success, else the refusal's code."""
    if reason is None:
        SIGN_INS.labels(_word(method, SIGN_IN_METHODS), "success", "").inc()
    else:
        SIGN_INS.labels(_word(method, SIGN_IN_METHODS), "failure", _word(reason)).inc()


def count_tokens(grant_type: str, token: Mapping[str, Any]) -> None:
    grant = _word(grant_type, GRANT_TYPES)
    for field, kind in TOKEN_KINDS:
        if token.get(field):
            TOKENS_ISSUED.labels(grant, kind).inc()


def count_revocation(source: str, outcome: str) -> None:
    """The observer the card verifier is given (``idp.jpki`` itself imports nothing here)."""
    REVOCATION_CHECKS.labels(_word(source, REVOCATION_SOURCES),
                             _word(outcome, REVOCATION_OUTCOMES)).inc()


def count_throttle_hit(kind: str) -> None:
    THROTTLE_HITS.labels(_word(kind, THROTTLE_KINDS)).inc()


_VERBS = frozenset(("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"))
# The histogram's child per (endpoint, method), looked up once: labels() checks and joins
# its values and takes a lock on every call. Bounded: endpoints are the app's own names
# (an unmatched path is "unmatched") times eight methods.
_REQUEST_SERIES: dict[tuple[str, str], Any] = {}


def observe_request(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    name = endpoint if endpoint and len(endpoint) <= 80 else "unmatched"
    verb = method if method in _VERBS else "other"
    series = _REQUEST_SERIES.get((name, verb))
    if series is None:
        series = _REQUEST_SERIES[(name, verb)] = REQUEST_SECONDS.labels(name, verb)
    series.observe(seconds)
    if status >= 500:
        SERVER_ERRORS.labels(name, str(status)).inc()


class CountIssuedTokens:
    """An Authlib grant extension: counts what a successful token response carries.

    It wraps the grant's ``create_token_response`` rather than adding a hook: Authlib keeps
    hooks in a set, so a hook could run before the ID-token extension's and miss the
    ``id_token``; the wrapper sees the answer after every hook (and, for a refresh, after
    the rotation's commit). Duck-typed on the grant (``GRANT_TYPE``,
    ``create_token_response``): nothing of Authlib is imported here."""

    def __call__(self, grant: Any) -> None:
        respond = grant.create_token_response
        grant_type = str(getattr(grant, "GRANT_TYPE", "other"))

        def counted(*args: Any, **kwargs: Any) -> Any:
            response = respond(*args, **kwargs)
            _status, token, _headers = response
            if isinstance(token, Mapping):
                count_tokens(grant_type, token)
            return response

        grant.create_token_response = counted


# ----------------------------------------------------------------------------- scraping
@dataclass(frozen=True)
class CrlAge:
    """One loaded CRL as the scrape reports it."""

    issuer: str  # the issuing CA's certificate fingerprint (hex), never a person's name
    this_update: datetime
    next_update: datetime


class _CrlCollector(Collector):
    """CRL age and time to nextUpdate, computed when scraped (not when last refreshed), so a
    refresher that silently stopped still shows as a growing age."""

    def __init__(self, crls: Callable[[], Iterable[CrlAge]]) -> None:
        self._crls = crls

    def collect(self) -> Iterator[GaugeMetricFamily]:
        age = GaugeMetricFamily(
            "mynagate_crl_age_seconds",
            "Seconds since thisUpdate of the freshest loaded CRL, per issuing CA.",
            labels=["issuer"])
        left = GaugeMetricFamily(
            "mynagate_crl_next_update_seconds",
            "Seconds until nextUpdate of the freshest loaded CRL, per issuing CA "
            "(negative: stale, card sign-ins relying on it fail).", labels=["issuer"])
        now = datetime.now(UTC)
        freshest: dict[str, CrlAge] = {}
        for crl in self._crls():
            held = freshest.get(crl.issuer)
            if held is None or crl.this_update > held.this_update:
                freshest[crl.issuer] = crl
        for issuer, crl in sorted(freshest.items()):
            label = issuer[:16]
            age.add_metric([label], (now - crl.this_update).total_seconds())
            left.add_metric([label], (crl.next_update - now).total_seconds())
        yield age
        yield left


class _ThisProcess(Collector):
    def collect(self):
        return REGISTRY.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition(crls: Callable[[], Iterable[CrlAge]] = lambda: ()) -> bytes:
    """The text exposition: every worker's counters (multiprocess mode) or this process's,
    plus the CRL gauges of this process's loaded CRLs."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        _multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(_CrlCollector(crls))
    return generate_latest(registry)


def mark_process_dead(pid: int) -> None:
    """gunicorn's ``child_exit``: a dead worker's live gauges go (its counters stay summed)."""
    if multiprocess_dir():
        _multiprocess.mark_process_dead(pid)
