"""The one audit function every security event goes through.

Events go to the ``audit_events`` table and to the structured log. The pairwise ``sub`` is
never logged next to the account id: callers pass the account id only.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.orm import Session

from idp.store.models import AuditEvent

log = structlog.get_logger("audit")


def audit(
    db: Session,
    event: str,
    *,
    outcome: str = "ok",
    actor: str | None = None,
    account_id: str | None = None,
    school_id: str | None = None,
    client_id: str | None = None,
    ip: str | None = None,
    **details: Any,
) -> None:
    """Record ``event``. The caller's unit of work commits it with the change it describes."""
    db.add(AuditEvent(event=event, outcome=outcome, actor=actor, account_id=account_id,
                      school_id=school_id, client_id=client_id, ip=ip, details=details))
    log.info(event, outcome=outcome, actor=actor, account_id=account_id, client_id=client_id,
             ip=ip, **details)
