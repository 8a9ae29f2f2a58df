"""The readiness checks behind ``/readyz``, without Flask: each takes the services and says
ok or why not, and :func:`run_checks` never raises (a probe that answers 500 tells the load
balancer nothing it can act on).

The reasons are short and generic on purpose: ``/readyz`` needs no credentials, so it must
not show hostnames, URLs or driver messages. The detail goes to the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from idp.keys import ALGORITHMS
from idp.services import Services

log = structlog.get_logger("idp.ops")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    reason: str = ""

    def as_json(self) -> dict[str, str]:
        body = {"status": "ok" if self.ok else "failed"}
        if self.reason:
            body["reason"] = self.reason
        return body


class NotReady(Exception):
    """A check's own refusal; its message is safe to show."""


def check_database(svc: Services) -> None:
    svc.db.ping()  # SELECT 1


def check_store(svc: Services) -> None:
    svc.store.ping()


def check_signing_keys(svc: Services) -> None:
    """Every algorithm has an active key whose private half this process can sign with."""
    for alg in ALGORITHMS:
        key = svc.keys.for_alg(alg)
        if not key.is_private:
            raise NotReady(f"no private {alg} signing key")


def check_revocation_data(svc: Services, now: datetime | None = None) -> None:
    """With CRLs configured: every source has a CRL loaded, and none is past nextUpdate.

    OCSP alone has no data to hold, and with revocation off (development) nothing is
    checked."""
    card = svc.card
    sources = card.crl_sources
    if not sources:
        return
    now = now or datetime.now(UTC)
    loaded = {status.source: status for status in card.loaded_crls()}
    missing = [s for s in sources if s not in loaded]
    if missing:
        raise NotReady(f"{len(missing)} of {len(sources)} CRL source(s) not loaded")
    stale = [s for s in loaded.values() if s.next_update is None or s.next_update <= now]
    if stale:
        raise NotReady(f"{len(stale)} CRL(s) past nextUpdate")


#: The checks, in the order they are reported.
CHECKS: tuple[tuple[str, Callable[[Services], None]], ...] = (
    ("database", check_database),
    ("store", check_store),
    ("signing_keys", check_signing_keys),
    ("revocation_data", check_revocation_data),
)


def run_checks(svc: Services) -> list[CheckResult]:
    results = []
    for name, check in CHECKS:
        try:
            check(svc)
        except NotReady as exc:
            results.append(CheckResult(name, False, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a failed check is an answer, not a 500
            log.warning("readiness_check_failed", check=name, error_type=type(exc).__name__,
                        error=str(exc)[:200])
            results.append(CheckResult(name, False, f"unavailable ({type(exc).__name__})"))
        else:
            results.append(CheckResult(name, True))
    return results
