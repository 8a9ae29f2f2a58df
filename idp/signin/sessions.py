"""Server-side browser sessions in the short-lived store, as Flask's session interface.

The cookie carries only a random id; the store keys it by its hash. A new id is issued at
every sign-in (:func:`regenerate`). Idle and absolute limits are enforced here, and a server-
side logout or an admin's "end all sessions" deletes the record, so a copied cookie dies too.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import structlog
from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from idp.store.shortlived import ShortLivedStore, StoreUnavailable

_log = structlog.get_logger("idp.sessions")


def _key(session_id: str) -> str:
    return "sess:" + hashlib.sha256(session_id.encode()).hexdigest()


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial: dict[str, Any] | None = None, session_id: str | None = None,
                 new: bool = False) -> None:
        def on_update(_self):
            self.modified = True

        super().__init__(initial or {}, on_update)
        self.session_id = session_id
        self.new = new
        self.modified = False
        self.regenerate_requested = False
        self.old_session_id: str | None = None
        # Set when the store could not be read: the app answers 503 before any view runs.
        self.store_down = False


def regenerate(session: ServerSession) -> None:
    """Give the session a new id (at sign-in), dropping the old record."""
    session.regenerate_requested = True
    session.modified = True


def end_account_sessions(store: ShortLivedStore, account_id: str) -> int:
    ids = store.members(f"acct-sess:{account_id}")
    for hashed in ids:
        store.delete("sess:" + hashed)
    store.delete(f"acct-sess:{account_id}")
    return len(ids)


class StoreSessionInterface(SessionInterface):
    def __init__(self, store: ShortLivedStore, *, idle: int, absolute: int, secure: bool,
                 sessionless: frozenset[str] = frozenset()) -> None:
        self.store = store
        # Paths answered without a session (health checks, metrics): never read the store
        # for them (a liveness probe must not depend on Redis) and never set a cookie.
        self.sessionless = sessionless
        self.idle = idle
        self.absolute = absolute
        self.secure = secure
        # __Host- prefix: the browser refuses it unless Secure, Path=/ and no Domain.
        self.cookie_name = "__Host-mynagate" if secure else "mynagate_session"

    def open_session(self, app: Flask, request: Request) -> SessionMixin:
        if request.path in self.sessionless:
            return self.make_null_session(app)
        session_id = request.cookies.get(self.cookie_name)
        if session_id and len(session_id) <= 128:
            try:
                data = self.store.get(_key(session_id))
            except StoreUnavailable:
                down = ServerSession(new=True)
                down.store_down = True
                return down
            now = time.time()
            if data and now - data.get("_created", 0) < self.absolute and \
                    now - data.get("_seen", 0) < self.idle:
                return ServerSession(data, session_id=session_id)
        return ServerSession(new=True)

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:  # type: ignore[override]
        if session.store_down or (not session and not session.session_id) \
                or self._nothing_to_write(session):
            return
        try:
            # The old record's removal, the new one and the account's index of its
            # sessions: one round trip.
            with self.store.batched():
                self._save(session, response)
        except StoreUnavailable as exc:
            # Too late to change the answer; the next request gets a 503 from open_session.
            # A sign-out whose record could not be deleted is an error to see: the cookie
            # is gone from this browser, but a copy of it would still work until the idle
            # limit.
            (_log.error if not session else _log.warning)(
                "session_not_saved", sign_out=not session, error=str(exc)[:200])
            return

    @staticmethod
    def _nothing_to_write(session: ServerSession) -> bool:
        """A kept session read and left as it was, its idle clock refreshed less than a
        minute ago (refreshed at most once a minute, to keep reads cheap): most requests
        of a signed-in browser, answered without a batch to open."""
        return bool(session) and bool(session.session_id) and not session.modified \
            and not session.regenerate_requested \
            and time.time() - session.get("_seen", 0) < 60

    def _save(self, session: ServerSession, response: Response) -> None:
        now = time.time()
        if not session:
            # Emptied (logout): the cookie first, whatever becomes of the record (on a
            # shared PC the next child must not find this one still signed in), then the
            # record; if that fails, save_session logs it as an error.
            response.delete_cookie(self.cookie_name, path="/", secure=self.secure,
                                   httponly=True, samesite="Lax")
            if session.session_id:
                self.store.delete(_key(session.session_id))
            return
        if session.regenerate_requested or not session.session_id:
            if session.session_id:
                self.store.delete(_key(session.session_id))
            session.session_id = secrets.token_urlsafe(32)
            session["_created"] = now
        # (A session with nothing to write never gets here: save_session returned.)
        session["_seen"] = now
        data = dict(session)
        data.setdefault("_created", now)
        remaining = int(self.absolute - (now - data["_created"]))
        ttl = max(1, min(self.idle, remaining))
        self.store.put(_key(session.session_id), data, ttl)
        if data.get("account_id"):
            hashed = hashlib.sha256(session.session_id.encode()).hexdigest()
            self.store.add_member(f"acct-sess:{data['account_id']}", hashed, self.absolute)
        response.set_cookie(self.cookie_name, session.session_id, max_age=None, path="/",
                            secure=self.secure, httponly=True, samesite="Lax")
