"""Reading the audit log: filters, CSV export, the retention setting and the purge."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from idp.accounts.roles import Action, Actor, require, school_scope
from idp.audit import audit
from idp.japan_time import japan_day_bounds
from idp.store.admin_models import PlatformSetting
from idp.store.models import Account, AuditEvent, RefusedEvent, utcnow

RETENTION_KEY = "audit_retention_days"
DEFAULT_RETENTION_DAYS = 400  # a school year and a bit: long enough to answer a parent
RETENTION_RANGE = (30, 3650)
EXPORT_LIMIT = 100_000
YEARS = (1900, 9000)
CSV_COLUMNS = ("id", "at", "event", "outcome", "actor", "account_id", "school_id",
               "client_id", "ip", "details")


@dataclass
class AuditFilter:
    account_id: str | None = None
    client_id: str | None = None
    event: str | None = None  # exact name, or a prefix ending in "." ("client.")
    since: date | None = None
    until: date | None = None  # inclusive
    school_id: str | None = None
    # since/until are days in Japan (the pages) rather than UTC days (the API, as documented)
    japan_days: bool = False


def parse_date(raw: str | None) -> date | None:
    """``YYYY-MM-DD`` or None; raises ValueError for anything else."""
    if not raw:
        return None
    if len(raw) != 10:
        raise ValueError("dates are YYYY-MM-DD")
    day = date.fromisoformat(raw)
    # A year at the calendar's edge would overflow the day's bounds (a 500, not an answer).
    if not YEARS[0] <= day.year <= YEARS[1]:
        raise ValueError(f"dates are in {YEARS[0]}-{YEARS[1]}")
    return day


def _day_start(day: date, japan: bool) -> datetime:
    return japan_day_bounds(day)[0] if japan else datetime.combine(day, datetime.min.time())


def _query(db: Session, actor: Actor, flt: AuditFilter):
    scope = school_scope(actor, Action.AUDIT, flt.school_id)
    stmt = select(AuditEvent)
    if scope is not None:
        # A school's own records, and its accounts' records tied to no school (sign-ins,
        # tokens). A record tied to another school stays in that school's log: after a
        # transfer the receiving school does not read what the old school did.
        in_school = select(Account.id).where(Account.school_id == scope)
        stmt = stmt.where(or_(AuditEvent.school_id == scope,
                              and_(AuditEvent.school_id.is_(None),
                                   AuditEvent.account_id.in_(in_school))))
    if flt.account_id:
        stmt = stmt.where(AuditEvent.account_id == flt.account_id[:32])
    if flt.client_id:
        stmt = stmt.where(AuditEvent.client_id == flt.client_id[:64])
    if flt.event:
        event = flt.event[:64]
        if event.endswith("."):
            stmt = stmt.where(AuditEvent.event.startswith(event, autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.event == event)
    if flt.since:
        stmt = stmt.where(AuditEvent.at >= _day_start(flt.since, flt.japan_days))
    if flt.until:
        stmt = stmt.where(AuditEvent.at < _day_start(flt.until, flt.japan_days)
                          + timedelta(days=1))
    return stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


def search(db: Session, actor: Actor, flt: AuditFilter, *, limit: int = 100,
           offset: int = 0) -> list[AuditEvent]:
    limit = max(1, min(limit, 500))
    return list(db.scalars(_query(db, actor, flt).limit(limit).offset(max(0, offset))))


@dataclass(frozen=True)
class Person:
    display_name: str
    login_id: str
    school_code: str
    role: str


def people_of(db: Session, actor: Actor, rows: list[AuditEvent]) -> dict[str, Person]:
    """The names and login ids behind the account ids of ``rows`` (the subject and the one
    who acted), for those accounts ``actor`` may see: a platform admin every account, a
    school admin only their own school's (an id of another school stays a bare id)."""
    ids = {i for row in rows for i in (row.account_id, row.actor) if i and len(i) <= 32}
    if not ids:
        return {}
    stmt = select(Account).where(Account.id.in_(ids))
    if not actor.is_platform_admin:
        stmt = stmt.where(Account.school_id == actor.school_id)
    return {a.id: Person(a.display_name, a.login_id, a.school.code, a.role)
            for a in db.scalars(stmt)}


def event_view(row: AuditEvent) -> dict[str, Any]:
    return {"id": row.id, "at": row.at.isoformat() + "Z", "event": row.event,
            "outcome": row.outcome, "actor": row.actor, "account_id": row.account_id,
            "school_id": row.school_id, "client_id": row.client_id, "ip": row.ip,
            "details": row.details or {}}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # Spreadsheet formula injection: a cell must not start with = + - @ (OWASP CSV injection).
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text
    return text


def export_csv(db: Session, actor: Actor, flt: AuditFilter) -> Iterator[str]:
    """CSV lines (UTF-8 with BOM so Excel opens Japanese correctly)."""
    import json

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + buffer.getvalue()
    stmt = _query(db, actor, flt).limit(EXPORT_LIMIT).execution_options(yield_per=500)
    for row in db.scalars(stmt):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(v) for v in (
            row.id, row.at.isoformat() + "Z", row.event, row.outcome, row.actor,
            row.account_id, row.school_id, row.client_id, row.ip,
            json.dumps(row.details or {}, ensure_ascii=False, sort_keys=True))])
        yield buffer.getvalue()


# ----------------------------------------------------------------------------- retention
def retention_days(db: Session) -> int:
    row = db.get(PlatformSetting, RETENTION_KEY)
    if row is None or not isinstance(row.value, dict):
        return DEFAULT_RETENTION_DAYS
    days = row.value.get("days")
    return days if isinstance(days, int) else DEFAULT_RETENTION_DAYS


def set_retention_days(db: Session, actor: Actor, days: int) -> None:
    require(actor, Action.SETTINGS)
    if isinstance(days, bool) or not isinstance(days, int) or \
            not RETENTION_RANGE[0] <= days <= RETENTION_RANGE[1]:
        raise ValueError(f"retention must be {RETENTION_RANGE[0]}-{RETENTION_RANGE[1]} days")
    row = db.get(PlatformSetting, RETENTION_KEY)
    before = retention_days(db)
    if row is None:
        row = PlatformSetting(key=RETENTION_KEY, value={"days": days})
        db.add(row)
    row.value = {"days": days}
    row.updated_by = actor.account_id
    audit(db, "settings.audit_retention", actor=actor.account_id, before=before, after=days)


def purge(db: Session, *, actor: str, now: datetime | None = None) -> int:
    """Delete events older than the retention (with the event-log records the database
    refused, kept aside: idp.event_log); the purge itself is recorded."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days(db))
    result = db.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
    refused = db.execute(delete(RefusedEvent).where(RefusedEvent.at < cutoff))
    audit(db, "audit.purged", actor=actor, deleted=result.rowcount,
          refused_deleted=refused.rowcount or 0, before=cutoff.isoformat() + "Z")
    return result.rowcount or 0
