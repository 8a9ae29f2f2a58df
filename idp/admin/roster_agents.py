"""Guardian links from a roster's ``agentSourcedIds``: which links an import makes and which
it ends. Pure: no Flask, no SQL (idp.admin.roster_service feeds it and applies the plan).

The rules (docs/oneroster.md, "Guardians"):

* A student's agents are their guardians; a guardian's agents are their children. Either
  side may name the other (or both); the link is the same.
* Both must be in the same school, in the bundle or already in Mynagate with that
  sourcedId. An agent found nowhere in that school (another school's pupil included) is an
  error, and so is a guardian naming a non-student or a student naming a non-guardian:
  nothing of the import is written.
* A bulk bundle whose users.csv has the ``agentSourcedIds`` column is the whole truth about
  the links *a roster made* in its schools: such a link it no longer names is ended. A link a
  school made by hand (page, API, CLI) is never ended by an import, nor is one whose
  guardian and child are now in two schools (a pupil who moved: the schools end it by hand).
  A delta only adds links (a delta row may carry a partial list); a link ends there when the
  school ends it by hand or a bulk bundle leaves it out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from idp.admin.roster import GUARDIAN, ExistingAccount, ParsedRoster, RosterPlan, RowError

STUDENT = "student"
ROSTER_ORIGIN = "roster"


@dataclass(frozen=True)
class ExistingLink:
    id: str
    guardian_id: str
    child_id: str
    origin: str
    child_school_id: str
    guardian_school_id: str


@dataclass(frozen=True)
class PlannedLink:
    line: int
    school_id: str
    guardian_sourced_id: str
    child_sourced_id: str
    guardian_login: str
    child_login: str
    link_id: str = ""  # for a link to end: the existing link


@dataclass(frozen=True)
class _Person:
    role: str
    login_id: str
    account_id: str | None  # None: created by this import


def plan_links(plan: RosterPlan, parsed: ParsedRoster, *, school_ids: Mapping[str, str],
               allowed_school_ids: set[str] | None, existing: Iterable[ExistingAccount],
               links: Iterable[ExistingLink]) -> None:
    """Add to ``plan`` the links to make (``plan.links``), to end (``plan.unlinks``) and
    the agent errors."""
    accounts = list(existing)
    people = _people(parsed, school_ids, accounts)
    wanted: dict[tuple[str, str, str], int] = {}  # (school, guardian sid, child sid) → line
    schools_in_file: set[str] = set()
    for row in parsed.rows:
        school_id = school_ids.get(row.school_code)
        if row.remove or school_id is None or (
                allowed_school_ids is not None and school_id not in allowed_school_ids):
            continue
        schools_in_file.add(school_id)
        me = people.get((school_id, row.sourced_id))
        if not row.agents or me is None:
            continue
        if me.role not in (GUARDIAN, STUDENT):
            plan.skipped.append(RowError(row.line, "agents_ignored", "agentSourcedIds", "",
                                         "users.csv"))
            continue
        for agent in row.agents:
            other = people.get((school_id, agent))
            code = _agent_error(me.role, other)
            if code is not None:
                plan.errors.append(RowError(row.line, code, "agentSourcedIds", agent[:70],
                                            "users.csv"))
                continue
            pair = (row.sourced_id, agent) if me.role == GUARDIAN else (agent, row.sourced_id)
            wanted.setdefault((school_id, *pair), row.line)
    by_id = {a.id: a for a in accounts}
    linked = {(link.guardian_id, link.child_id): link for link in links}
    wanted_ids: set[tuple[str | None, str | None]] = set()
    for (school_id, guardian_sid, child_sid), line in sorted(wanted.items(),
                                                             key=lambda kv: kv[1]):
        guardian, child = people[(school_id, guardian_sid)], people[(school_id, child_sid)]
        wanted_ids.add((guardian.account_id, child.account_id))
        if (guardian.account_id, child.account_id) in linked:
            continue  # already linked (by a roster or by hand): nothing to do
        plan.links.append(PlannedLink(line, school_id, guardian_sid, child_sid,
                                      guardian.login_id, child.login_id))
    if parsed.mode == "bulk" and parsed.agents_given:
        for (guardian_id, child_id), link in sorted(linked.items(), key=lambda kv: kv[1].id):
            # Only a roster's links inside the bundle's schools: one that spans two schools
            # (a pupil who moved) is the two schools' to end by hand.
            if link.origin != ROSTER_ORIGIN or link.child_school_id not in schools_in_file \
                    or link.guardian_school_id != link.child_school_id \
                    or (guardian_id, child_id) in wanted_ids:
                continue
            guardian, child = by_id.get(guardian_id), by_id.get(child_id)
            plan.unlinks.append(PlannedLink(
                0, link.child_school_id, guardian.sourced_id if guardian else "",
                child.sourced_id if child else "", guardian.login_id if guardian else "",
                child.login_id if child else "", link_id=link.id))
    plan.errors.sort(key=lambda e: (e.file, e.line))


def _people(parsed: ParsedRoster, school_ids: Mapping[str, str],
            accounts: list[ExistingAccount]) -> dict[tuple[str, str], _Person]:
    """Everyone an agent may name, by (school id, sourcedId): the accounts already there,
    with what this import makes of them (a new role, a new login id) on top."""
    people = {(a.school_id, a.sourced_id): _Person(a.role, a.login_id, a.id)
              for a in accounts if a.sourced_id}
    by_login = {(a.school_id, a.login_id.lower()): a for a in accounts if not a.sourced_id}
    for row in parsed.rows:
        school_id = school_ids.get(row.school_code)
        if row.remove or school_id is None or not row.sourced_id:
            continue
        current = people.get((school_id, row.sourced_id))
        if current is None and (school_id, row.login_id.lower()) in by_login:
            # An account of a CSV roster that this bundle gives its sourcedId now.
            found = by_login[(school_id, row.login_id.lower())]
            current = _Person(found.role, found.login_id, found.id)
        role = current.role if "role" in row.keep and current else row.role
        people[(school_id, row.sourced_id)] = _Person(
            role, row.login_id, current.account_id if current else None)
    return people


def _agent_error(my_role: str, other: _Person | None) -> str | None:
    if other is None:
        return "agent_not_in_school"
    if my_role == GUARDIAN and other.role != STUDENT:
        return "agent_not_student"
    if my_role == STUDENT and other.role != GUARDIAN:
        return "agent_not_guardian"
    return None


def links_view(plan: RosterPlan) -> dict[str, list[dict[str, str | int]]]:
    """The links of a plan as JSON (the preview shows them before anything is written)."""
    def one(link: PlannedLink) -> dict[str, str | int]:
        view: dict[str, str | int] = {"guardian": link.guardian_login,
                                      "child": link.child_login,
                                      "guardian_sourced_id": link.guardian_sourced_id,
                                      "child_sourced_id": link.child_sourced_id}
        if link.line:
            view["line"] = link.line
        if link.link_id:
            view["link_id"] = link.link_id
        return view

    return {"link": [one(k) for k in plan.links], "unlink": [one(k) for k in plan.unlinks]}
