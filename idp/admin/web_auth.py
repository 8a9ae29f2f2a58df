"""Admin sessions in the browser: who the admin is, how they proved it, and the 15-minute
idle limit. An admin session needs a second factor: TOTP after the password, or a card
sign-in (its acr already means "something you have + something you know") with a card that
was linked in a sign-in that passed TOTP (a card linked with a password alone would make a
known password enough)."""

from __future__ import annotations

import time
from functools import wraps

from flask import abort, redirect, request, session, url_for

from idp.accounts.linking import card_stands_in_for_totp
from idp.accounts.roles import ADMIN_ROLES, STAFF_ROLES, Actor
from idp.services import services
from idp.signin.context import ACR_CARD
from idp.signin.current import ADMIN_SESSION_KEYS, current_user

ADMIN_IDLE = 15 * 60
# The keys sign_in() drops for the next account (idp.signin.current.ADMIN_SESSION_KEYS).
SEEN_KEY, MFA_KEY, PENDING_KEY = ADMIN_SESSION_KEYS  # MFA: "totp" | "card"; PENDING: TOTP due
PENDING_TTL = 5 * 60


def mark_admin(mfa: str) -> None:
    session[MFA_KEY] = mfa
    session[SEEN_KEY] = time.time()
    session.pop(PENDING_KEY, None)


def drop_admin() -> None:
    for key in (SEEN_KEY, MFA_KEY, PENDING_KEY):
        session.pop(key, None)


def admin_state(allowed: frozenset[str] = ADMIN_ROLES) -> tuple[str, Actor | None]:
    """("ok", actor) | ("login", None) | ("stale", None) | ("forbidden", None).

    ``allowed``: the roles the page admits (the card-linking pages admit teachers too)."""
    user = current_user()
    if user is None:
        return "login", None
    account = user.account
    actor = Actor(account.id, account.role, account.school_id)
    if actor.role not in allowed:
        return "forbidden", None
    now = time.time()
    seen = session.get(SEEN_KEY)
    fresh = isinstance(seen, int | float) and now - seen <= ADMIN_IDLE
    if session.get(MFA_KEY) and fresh:
        session[SEEN_KEY] = now
        return "ok", actor
    if user.auth.acr == ACR_CARD and (fresh or now - user.auth.auth_time <= ADMIN_IDLE) \
            and _card_was_linked_under_totp(account.id):
        mark_admin("card")
        return "ok", actor
    if session.get(MFA_KEY) or session.get(SEEN_KEY):
        drop_admin()
        return "stale", None
    return "login", None


def _card_was_linked_under_totp(account_id: str) -> bool:
    """A card sign-in stands in for TOTP only with a binding linked under TOTP."""
    with services().db.session() as db:
        return card_stands_in_for_totp(db, account_id, session.get("card_binding"))


def admin_required(view):
    """Admin pages: not signed in or stale → the admin sign-in; not an admin → 403."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        state, actor = admin_state()
        if state == "forbidden":
            abort(403)
        if actor is None:
            return redirect(url_for("admin.login", reason=state, next=request.path), 303)
        return view(actor, *args, **kwargs)

    return wrapper


def staff_required(view):
    """The school-assisted card-linking pages: admins and teachers, signed in with password
    + TOTP in this browser. A card session does not count here: the card on the reader is
    the student's, and the staff member's own proof must not be a card at the same PC."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        state, actor = admin_state(STAFF_ROLES)
        if state == "forbidden":
            abort(403)
        if actor is None or session.get(MFA_KEY) != "totp":
            return redirect(url_for("admin.login", reason=state if actor is None else "totp",
                                    next=request.path), 303)
        return view(actor, *args, **kwargs)

    return wrapper
