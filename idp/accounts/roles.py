"""Who may do what in administration — the one permission rule, pure (no Flask, no SQL).

A platform admin may do everything. A school admin may act only on their own school's
accounts, cards, sessions, roster and audit log — and, among accounts, only on students and
teachers (the roles a school admin may grant). A teacher may only link a student's card at
the school PC (school-assisted linking). Everyone else may do nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

PLATFORM_ADMIN = "platform_admin"
SCHOOL_ADMIN = "school_admin"
TEACHER = "teacher"
STUDENT = "student"
GUARDIAN = "guardian"  # a pupil's parent or carer, linked to children by the school
ADMIN_ROLES = frozenset({PLATFORM_ADMIN, SCHOOL_ADMIN})
# Who may sign in to /admin at all (password + TOTP); teachers reach only card linking.
STAFF_ROLES = frozenset({PLATFORM_ADMIN, SCHOOL_ADMIN, TEACHER})
ACCOUNT_ROLES = (STUDENT, TEACHER, GUARDIAN, SCHOOL_ADMIN, PLATFORM_ADMIN)


class Action(StrEnum):
    CLIENTS = "clients"  # relying parties: list, create, edit, disable, delete, rotate
    INITIAL_ACCESS_TOKENS = "initial_access_tokens"
    SCHOOLS = "schools"  # create schools, see every school
    SETTINGS = "settings"  # platform-wide settings (audit retention)
    ACCOUNTS = "accounts"  # read/lock/unlock/end sessions/reset codes/create
    CARDS = "cards"
    ROSTER = "roster"
    AUDIT = "audit"
    SCHOOL_YEAR = "school_year"  # year-end promotion and graduation, graduates' lifecycle
    LINK_CARDS = "link_cards"  # school-assisted card linking for a student at the school PC
    GUARDIANS = "guardians"  # link a guardian account to a pupil, or end the link


# What a school admin may do, and only inside their own school.
SCHOOL_SCOPED = frozenset({Action.ACCOUNTS, Action.CARDS, Action.ROSTER, Action.AUDIT,
                           Action.LINK_CARDS, Action.SCHOOL_YEAR, Action.GUARDIANS})
# What a teacher may do, and only inside their own school.
TEACHER_SCOPED = frozenset({Action.LINK_CARDS})


@dataclass(frozen=True)
class Actor:
    account_id: str
    role: str
    school_id: str

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES

    @property
    def is_platform_admin(self) -> bool:
        return self.role == PLATFORM_ADMIN


class Forbidden(Exception):
    """The actor may not do this; views answer 403."""


def may(actor: Actor, action: Action, school_id: str | None = None) -> bool:
    """Whether ``actor`` may perform ``action`` on something in ``school_id``.

    ``school_id`` None means "not tied to a school" (a relying party) or "every school"
    (an unscoped list); a school admin is never allowed that.
    """
    if actor.role == PLATFORM_ADMIN:
        return True
    if actor.role == SCHOOL_ADMIN:
        return action in SCHOOL_SCOPED and school_id is not None and school_id == actor.school_id
    if actor.role == TEACHER:
        return action in TEACHER_SCOPED and school_id is not None and school_id == actor.school_id
    return False


def may_act_on(actor: Actor, action: Action, target_role: str, school_id: str | None) -> bool:
    """Whether ``actor`` may perform ``action`` on an *account* of ``target_role`` in
    ``school_id``: the school rule of :func:`may`, and the account must hold a role the actor
    could grant — so a school admin never locks, resets or unlinks another admin (school or
    platform), nor themselves. Card linking is for students only, whoever links."""
    if not may(actor, action, school_id):
        return False
    if action == Action.LINK_CARDS:
        return target_role == STUDENT
    return may_grant_role(actor, target_role)


def require_on(actor: Actor, action: Action, target_role: str, school_id: str | None) -> None:
    if not may_act_on(actor, action, target_role, school_id):
        raise Forbidden(f"{actor.role} may not use {action.value} on a {target_role}")


def require(actor: Actor, action: Action, school_id: str | None = None) -> None:
    if not may(actor, action, school_id):
        raise Forbidden(f"{actor.role} may not use {action.value}")


def school_scope(actor: Actor, action: Action, requested: str | None) -> str | None:
    """The school a listing is limited to: a school admin always sees only their own school
    (an explicit other school is refused); a platform admin sees ``requested`` or all."""
    if actor.role == PLATFORM_ADMIN:
        return requested
    target = requested or actor.school_id
    require(actor, action, target)
    return target


def may_grant_role(actor: Actor, role: str) -> bool:
    """Only a platform admin makes admins; a school admin manages students, teachers and
    guardians."""
    if role not in ACCOUNT_ROLES:
        return False
    return actor.role == PLATFORM_ADMIN or (actor.role == SCHOOL_ADMIN
                                            and role in (STUDENT, TEACHER, GUARDIAN))
