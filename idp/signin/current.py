"""Who is signed in to this browser, and how (the session's auth context)."""

from __future__ import annotations

import secrets
import time

from flask import g, session

from idp.services import services
from idp.signin.context import ACR_PASSWORD, AuthContext, SignedInUser
from idp.signin.sessions import regenerate
from idp.store.models import Account

#: Session keys of the admin area's second factor (idp.admin.web_auth names them).
ADMIN_SESSION_KEYS = ("admin_seen", "admin_mfa", "admin_pending")
#: How this session passed the admin area's second factor ("totp" | "card"), if it did.
ADMIN_MFA_KEY = ADMIN_SESSION_KEYS[1]


def browser_id() -> str:
    """A random id tying login transactions and card challenges to this browser."""
    if "browser" not in session:
        session["browser"] = secrets.token_urlsafe(16)
    return session["browser"]


def current_user() -> SignedInUser | None:
    if "current_user" in g:
        return g.current_user
    user = None
    account_id = session.get("account_id")
    if account_id:
        account = services().accounts.active(account_id)
        if account is not None:
            user = SignedInUser(account, AuthContext(
                int(session["auth_time"]), session["acr"], list(session["amr"]),
                session["sid"]))
        if user is None:
            sign_out()
    g.current_user = user
    return user


def must_change_now() -> bool:
    """Whether this browser signed in with a first password (the teacher's slip) that must
    be changed before anything else: idp.account.first_password_views guards every
    request with it, and the sign-in pages that answer an app themselves ask it too
    (idp.oidc.views.continue_authorization). A card sign-in is never asked."""
    user = current_user()
    return (user is not None and user.auth.acr == ACR_PASSWORD
            and bool(user.account.must_change_password))


def sign_in(account: Account, *, acr: str, amr: list[str],
            card_binding: str | None = None) -> SignedInUser:
    """Start a signed-in session: a new session id (no fixation), a new ``sid``.
    ``card_binding``: the binding a card sign-in used (the admin rule looks at it)."""
    regenerate(session)  # type: ignore[arg-type]
    # The admin area's proof (TOTP, its idle clock, a password awaiting TOTP) belongs to
    # the account that gave it: a sign-in as someone else in this browser starts without.
    for key in ADMIN_SESSION_KEYS:
        session.pop(key, None)
    session["account_id"] = account.id
    session["auth_time"] = int(time.time())
    session["acr"] = acr
    session["amr"] = list(amr)
    session["sid"] = secrets.token_urlsafe(16)
    if card_binding:
        session["card_binding"] = card_binding
    else:
        session.pop("card_binding", None)
    browser_id()
    g.current_user = SignedInUser(account, AuthContext(session["auth_time"], acr, amr,
                                                       session["sid"]))
    return g.current_user


def sign_out() -> None:
    session.clear()
    g.current_user = None
