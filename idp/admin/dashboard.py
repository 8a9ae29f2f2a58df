"""The numbers of the admin home page ("is it working?"), without Flask.

Every figure is one bounded query: counts with GROUP BY over the accounts, the card
bindings, and today's audit events (the Japan day, through the index on ``audit_events.at``).
A school admin's figures are their own school's only; a platform admin's cover every school.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, extract, func, or_, select
from sqlalchemy.orm import Session

from idp.accounts.roles import Action, Actor, require
from idp.admin.transfers import pending_offers
from idp.japan_time import japan_day_bounds, japan_hour_of_utc_hour, japan_minute, japan_today
from idp.metrics import REVOCATION_CHECKS
from idp.store.models import Account, AuditEvent, CardBinding, Client, School, utcnow

#: The audit events that are sign-ins, and the method each stands for.
SIGN_IN_EVENTS = {"login.password": "password", "login.card": "card",
                  "admin.login": "admin", "admin.totp": "admin"}
#: The ``page`` detail of the ``login.card`` events the admin sign-in page's card check
#: writes (idp.admin.card_login_views).
ADMIN_PAGE = "admin"
METHODS = ("password", "card", "admin")
STAFF = ("teacher", "school_admin", "platform_admin")


@dataclass
class SchoolFigures:
    school_id: str
    code: str
    name: str
    students: int = 0
    staff: int = 0
    guardians: int = 0
    with_card: int = 0


@dataclass
class Dashboard:
    day: date
    schools: list[SchoolFigures]
    # method -> 24 counts (Japan hours 0..23) of sign-ins that went through
    by_hour: dict[str, list[int]]
    refusals: list[tuple[str, str, int]]  # (event, reason, count), most first
    apps_enabled: int
    apps_disabled: int
    pending_transfers: int
    totals: dict[str, int] = field(default_factory=dict)


def _schools(db: Session, scope: str | None) -> list[SchoolFigures]:
    stmt = select(School).order_by(School.code)
    if scope is not None:
        stmt = stmt.where(School.id == scope)
    figures = {s.id: SchoolFigures(s.id, s.code, s.name) for s in db.scalars(stmt.limit(500))}
    people = (select(Account.school_id, Account.role, func.count())
              .where(Account.active.is_(True), Account.school_id.in_(figures))
              .group_by(Account.school_id, Account.role))
    for school_id, role, count in db.execute(people):
        row = figures[school_id]
        if role == "student":
            row.students += count
        elif role == "guardian":
            row.guardians += count
        elif role in STAFF:
            row.staff += count
    carded = (select(Account.school_id, func.count(func.distinct(CardBinding.account_id)))
              .join(Account, Account.id == CardBinding.account_id)
              .where(CardBinding.status == "active", CardBinding.not_after > utcnow(),
                     Account.active.is_(True), Account.school_id.in_(figures))
              .group_by(Account.school_id))
    for school_id, count in db.execute(carded):
        figures[school_id].with_card = count
    return list(figures.values())


def _in_scope(scope: str | None):
    """The audit rule of idp.admin.audit_log: a school's own records, and its accounts'
    records tied to no school."""
    if scope is None:
        return True
    in_school = select(Account.id).where(Account.school_id == scope)
    return or_(AuditEvent.school_id == scope,
               and_(AuditEvent.school_id.is_(None), AuditEvent.account_id.in_(in_school)))


def _not_an_admin_card_step():
    """Leaves out the admin page's card check when an ``admin.login`` follows it.

    An admin's card sign-in writes ``login.card`` (which account the card is linked to) and
    then ``admin.login`` (whether the admin checks passed). ``admin.login`` is the sign-in:
    it is written for every tap that got that far, ok or refused, and only it says whether
    anyone was signed in (a teacher's card gives ``login.card`` ok, then ``admin.login``
    refused). So the check's ok and not_linked events are steps, not counted; its refusals
    (a revoked card, a bad signature) end the attempt before ``admin.login`` and are the only
    record of it, so they stay.
    """
    page = AuditEvent.details["page"].as_string()
    return or_(AuditEvent.event != "login.card", AuditEvent.outcome == "refused",
               page.is_(None), page != ADMIN_PAGE)


def _sign_ins(db: Session, scope: str | None, start: datetime, end: datetime):
    today = and_(AuditEvent.at >= start, AuditEvent.at < end,
                 AuditEvent.event.in_(SIGN_IN_EVENTS), _in_scope(scope),
                 _not_an_admin_card_step())
    hour = extract("hour", AuditEvent.at)
    by_hour: dict[str, list[int]] = {method: [0] * 24 for method in METHODS}
    done = (select(AuditEvent.event, hour, func.count())
            .where(today, AuditEvent.outcome == "ok", AuditEvent.event != "admin.totp")
            .group_by(AuditEvent.event, hour))
    for event, utc_hour, count in db.execute(done):
        by_hour[SIGN_IN_EVENTS[event]][japan_hour_of_utc_hour(int(utc_hour))] += count
    reason = AuditEvent.details["reason"].as_string()
    refused = (select(AuditEvent.event, AuditEvent.outcome, reason, func.count())
               .where(today, AuditEvent.outcome.in_(("refused", "not_linked")))
               .group_by(AuditEvent.event, AuditEvent.outcome, reason)
               .order_by(func.count().desc()).limit(50))
    # A card linked to nobody yet is recorded as outcome "not_linked" with no reason.
    refusals = [(event, why or outcome, count)
                for event, outcome, why, count in db.execute(refused)]
    return by_hour, refusals


def dashboard(db: Session, actor: Actor, *, now: datetime | None = None) -> Dashboard:
    """The home page's figures for ``actor``'s reach (their school, or every school)."""
    scope = None if actor.is_platform_admin else actor.school_id
    if scope is not None:
        require(actor, Action.ACCOUNTS, scope)
    day = japan_today(now)
    start, end = japan_day_bounds(day)
    by_hour, refusals = _sign_ins(db, scope, start, end)
    apps = defaultdict(int, dict(db.execute(
        select(Client.enabled, func.count()).group_by(Client.enabled)).all()))
    board = Dashboard(day=day, schools=_schools(db, scope), by_hour=by_hour,
                      refusals=refusals, apps_enabled=apps[True], apps_disabled=apps[False],
                      pending_transfers=len(pending_offers(db, actor)))
    board.totals = {method: sum(hours) for method, hours in by_hour.items()}
    return board


# ----------------------------------------------------------------------------- revocation
@dataclass
class CrlFigure:
    source: str
    loaded: bool
    this_update: str = ""  # Japan time
    next_update: str = ""
    age_hours: float | None = None
    stale: bool = False


@dataclass
class Revocation:
    mode: str  # "ocsp,crl" | "crl" | "ocsp" | "none" | "off" (card sign-in off)
    crls: list[CrlFigure]
    ocsp_configured: bool
    # The OCSP answers this process has seen since it started (good/revoked/unknown/error).
    ocsp_answers: dict[str, int]


def _ocsp_answers() -> dict[str, int]:
    answers: dict[str, int] = {}
    for metric in REVOCATION_CHECKS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("source") == "ocsp":
                outcome = sample.labels.get("outcome", "")
                answers[outcome] = answers.get(outcome, 0) + int(sample.value)
    return answers


def revocation(card: Any, ocsp_url: str, now: datetime | None = None) -> Revocation:
    """How fresh the revocation data is: each CRL's age and nextUpdate, and the OCSP
    answers so far (``card``: the card service, idp.auth.card.CardService)."""
    now = now or datetime.now(UTC)
    if not card.enabled:
        return Revocation("off", [], False, {})
    loaded = {status.source: status for status in card.loaded_crls()}
    crls = []
    for source in card.crl_sources:
        status = loaded.get(source)
        if status is None:
            crls.append(CrlFigure(source, False, stale=True))
            continue
        this, nxt = status.this_update, status.next_update
        crls.append(CrlFigure(
            source, True, japan_minute(this), japan_minute(nxt),
            round((now - this).total_seconds() / 3600, 1) if this else None,
            stale=nxt is None or nxt <= now))
    return Revocation(card.revocation_mode, crls,
                      "ocsp" in card.revocation_mode and bool(ocsp_url), _ocsp_answers())


# ----------------------------------------------------------------------------- the chart
CHART_WIDTH, CHART_HEIGHT, CHART_LEFT, CHART_BOTTOM = 720, 220, 36, 24


def chart_bars(by_hour: dict[str, list[int]]) -> dict[str, Any]:
    """Stacked bars per Japan hour, as rectangles the template draws into an SVG (rendered
    on the server: no script, nothing for the CSP to refuse)."""
    totals = [sum(hours[h] for hours in by_hour.values()) for h in range(24)]
    top = max([*totals, 1])
    plot_height = CHART_HEIGHT - CHART_BOTTOM - 8
    slot = (CHART_WIDTH - CHART_LEFT) / 24
    bars = []
    for hour in range(24):
        y = CHART_HEIGHT - CHART_BOTTOM
        for method in METHODS:
            count = by_hour.get(method, [0] * 24)[hour]
            if count:
                height = count / top * plot_height
                y -= height
                bars.append({"method": method, "hour": hour, "count": count,
                             "x": round(CHART_LEFT + hour * slot + 2, 1),
                             "y": round(y, 1), "width": round(slot - 4, 1),
                             "height": round(height, 1)})
    return {"bars": bars, "top": top, "width": CHART_WIDTH, "height": CHART_HEIGHT,
            "left": CHART_LEFT, "baseline": CHART_HEIGHT - CHART_BOTTOM, "slot": slot,
            "totals": totals}
