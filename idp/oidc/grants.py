"""Authlib grants configured strictly: authorization code with S256 PKCE for every client
(RFC 9700 §2.1.1), single-use codes whose replay revokes what they issued, rotating refresh
tokens whose reuse revokes the family."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    grants,
    scope_to_list,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.accounts.lifecycle import may_use_client
from idp.audit import audit
from idp.clients.auth_methods import AUTH_METHODS
from idp.oidc.claims import VIA_ID_TOKEN, record_disclosure
from idp.oidc.id_token import issue_id_token
from idp.oidc.tokens import (
    IssuedToken,
    family_row,
    find_refresh_token,
    insert_revoked_family,
    issued_before_revocation,
    revoke_family,
    token_hash,
)
from idp.services import services
from idp.signin.context import AuthContext, SignedInUser
from idp.store.models import Account, TokenFamily, utcnow

log = structlog.get_logger("idp.oidc")


@dataclass
class StoredCode:
    """An authorization code record from the short-lived store (AuthorizationCodeMixin)."""

    code_hash: str
    data: dict[str, Any]

    def get_redirect_uri(self) -> str:
        return self.data["redirect_uri"]

    def get_scope(self) -> str:
        return self.data["scope"]

    def get_nonce(self) -> str | None:
        return self.data.get("nonce")

    def get_auth_time(self) -> int:
        return self.data["auth_time"]

    def get_acr(self) -> str:
        return self.data["acr"]

    def get_amr(self) -> list[str]:
        return self.data["amr"]

    @property
    def code_challenge(self) -> str | None:
        return self.data.get("code_challenge")

    @property
    def code_challenge_method(self) -> str | None:
        return self.data.get("code_challenge_method")

    @property
    def auth(self) -> AuthContext:
        return AuthContext(self.data["auth_time"], self.data["acr"], self.data["amr"],
                           self.data["sid"])


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only, required from every client, confidential ones included."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": CodeChallenge.CODE_CHALLENGE_METHODS["S256"]}

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with "
                                      "code_challenge_method=S256",
                                      redirect_uri=redirect_uri)
        if data.get("code_challenge_method", "plain") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256",
                                      redirect_uri=redirect_uri)
        try:
            super().validate_code_challenge(grant, redirect_uri)
        except InvalidRequestError as exc:
            exc.redirect_uri = redirect_uri
            raise


class WritesWhenBuilt:
    """For the token grants: the grant's rows are written by ONE statement once the whole
    answer is built (the ID token included), then what follows the commit runs, its store
    writes in one round trip.

    ``save_token`` only stages the write (:func:`stage_write`): a failure anywhere before it
    (signing, the database) leaves nothing half-issued (a rotation's old refresh token
    stays usable, no false theft alarm on its next use), and the write is one atomic
    statement on PostgreSQL (:func:`idp.oidc.tokens.insert_family_and_token`,
    :func:`~idp.oidc.tokens.rotate_refresh_token`)."""

    request: Any

    def create_token_response(self):
        request = self.request
        request.after_commit, request.grant_write = [], None
        try:
            response = super().create_token_response()  # type: ignore[misc]
            if request.grant_write is not None:
                request.grant_write()
            run_after_commit(request.after_commit)
            return response
        finally:
            request.after_commit = request.grant_write = None


def stage_write(request, write: Callable[[], None]) -> None:
    """The grant's one write, run by :class:`WritesWhenBuilt` once the answer is built."""
    request.grant_write = write


def run_after_commit(pending: list[Callable[[], None]]) -> None:
    """What follows a grant's commit: the access-token copy and the event records, sent to
    the store in one round trip. If the store cannot take them, the event records were
    written to the database instead and the copy is simply missing (UserInfo then asks the
    database). Whatever fails here, the tokens are issued: the answer stands (an error
    now would make the client retry a spent code or a used refresh token, and revoke its
    own tokens as a replay)."""
    try:
        with services().store.batched():
            for emit in pending:
                emit()
    except Exception as exc:  # noqa: BLE001 - logged; the committed grant is answered
        log.warning("after_commit_failed", error=str(exc)[:200])


class AuthorizationCodeGrant(WritesWhenBuilt, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_authorization_request(self):
        # Authlib validates an authorize request twice (for the consent grant, then again
        # when answering it); the request and its client are the same object both times,
        # so the second call returns the first one's answer.
        if self._validated is None:
            self._validated = (super().validate_authorization_request(),)
        return self._validated[0]

    _validated: tuple[str | None] | None = None

    def generate_authorization_code(self) -> str:
        # 256 bits from the OS in one call (Authlib's default draws each of its 48
        # characters with its own urandom call: ~10% of an authorize request's CPU).
        return secrets.token_urlsafe(32)

    def save_authorization_code(self, code: str, request) -> None:
        svc = services()
        user: SignedInUser = request.user
        data = request.payload.data
        record = {
            "client_id": request.client.get_client_id(),
            "redirect_uri": request.payload.redirect_uri,
            "scope": request.client.get_allowed_scope(request.payload.scope or ""),
            "account_id": user.account.id,
            "nonce": data.get("nonce"),
            "auth_time": user.auth.auth_time,
            "acr": user.auth.acr,
            "amr": list(user.auth.amr),
            "sid": user.auth.sid,
            "code_challenge": data.get("code_challenge"),
            "code_challenge_method": data.get("code_challenge_method", "S256"),
            "issued_at": utcnow().isoformat(),
        }
        svc.store.put("code:" + token_hash(code), record, svc.settings.code_lifetime)

    def query_authorization_code(self, code: str, client) -> StoredCode | None:
        if not isinstance(code, str) or len(code) > 512:
            return None
        svc = services()
        h = token_hash(code)
        client_id = client.get_client_id()
        # Compare-and-take in one atomic step: of two concurrent redemptions exactly one
        # gets the record, and a client the code was not issued to neither gets nor spends
        # it (a hostile app holding another app's code cannot burn it).
        found = svc.store.take_if("code:" + h, "client_id", client_id)
        if found.record is not None:
            return StoredCode(h, found.record)
        spent_by = (found.spent or {}).get("client_id")
        with svc.db.session() as db:
            if found.present and spent_by != client_id:
                # Another app's code, live or spent: refused, audited, nothing revoked.
                audit(db, "token.code_wrong_client", outcome="refused", client_id=client_id)
            else:
                _revoke_on_replay(db, h, client_id, found.spent)
        return None

    def delete_authorization_code(self, authorization_code) -> None:
        # Already removed atomically by query_authorization_code.
        return None

    def create_token_response(self):
        # The store's take is the first guard of single use; the database is the second. A
        # code can come back to the store after it was spent (a Redis replica promoted
        # before it saw the take, a restore from a snapshot): its token family exists, and
        # the family's unique code_hash refuses a second one. That is a replay, answered as
        # one (invalid_grant, and what the code issued goes), never as a 503 to retry.
        try:
            return super().create_token_response()
        except IntegrityError:
            code = self.request.authorization_code
            with services().db.session() as db:
                family = None if code is None else db.scalar(select(TokenFamily).where(
                    TokenFamily.code_hash == code.code_hash))
                if family is None:
                    raise
                if family.revoked_at is None:
                    _revoke_on_replay(db, code.code_hash, self.request.client.get_client_id())
                # (Revoked already: a replay racing this redemption left it, audited.)
            raise InvalidGrantError("the authorization code was already used") from None

    def authenticate_user(self, authorization_code: StoredCode):
        account = _active_account(authorization_code.data["account_id"],
                                  self.request.client.row)
        # Access ended (password reset, sessions ended, card revoked...) after this code
        # was issued: it goes with the tokens (invalid_grant).
        if account is None or issued_before_revocation(
                account, authorization_code.data.get("issued_at")):
            return None
        return account


class RefreshTokenGrant(WritesWhenBuilt, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> IssuedToken | None:
        svc = services()
        # The lookup is one read (no transaction): the claim in create_token_response is
        # what makes a use count, so nothing here needs to hold the row.
        issued = find_refresh_token(svc.db, refresh_token)
        if issued is None:
            return None
        if issued.row.refresh_used_at is not None and issued.family.revoked_at is None:
            # A rotated-out refresh token came back: it was stolen or replayed, so the
            # whole family goes (RFC 9700 §4.14.2).
            with svc.db.session() as db:
                revoke_family(db, issued.family.id, "refresh_reuse")
                audit(db, "token.refresh_reuse", outcome="refused",
                      client_id=issued.row.client_id, account_id=issued.row.account_id)
            return None
        if not issued.is_refresh_usable(svc.settings.refresh_token_idle):
            return None
        client = svc.clients.get(issued.row.client_id)
        if client is None or not client.enabled:
            return None
        # Withdrawn consent also revokes the tokens (revoke_client_account_tokens), so the
        # process's consent cache only has to agree with the row the claim will check.
        if svc.consents.scopes(issued.row.account_id, issued.row.client_id) is None:
            return None
        # A deactivated or locked account: invalid_grant (Authlib's own check, later, would
        # answer invalid_request).
        if _active_account(issued.row.account_id, client) is None:
            return None
        return issued

    def authenticate_user(self, refresh_token: IssuedToken):
        return _active_account(refresh_token.row.account_id, self.request.client.row)

    def revoke_old_credential(self, refresh_token: IssuedToken) -> None:
        # The rotation's one statement marks it used (idp.oidc.tokens.rotate_refresh_token).
        return None


def after_commit(request, emit: Callable[[], None]) -> None:
    """Run ``emit`` (an event-log record, the access-token copy) once the grant's write
    committed (:class:`WritesWhenBuilt`), or now outside a grant: a record never describes
    tokens that were not issued."""
    pending = getattr(request, "after_commit", None)
    if pending is None:
        emit()
    else:
        pending.append(emit)


def _revoke_on_replay(db: Session, code_hash: str, client_id: str,
                      spent: dict[str, Any] | None = None) -> None:
    """A spent code came back from the client it was issued to: what it issued goes (RFC
    6749 §4.1.2). From another client it is only refused, so a hostile app replaying a
    leaked, spent code cannot end the owner's tokens. ``spent``: the code's record as the
    store kept it after its first take."""
    family = db.scalar(select(TokenFamily).where(TokenFamily.code_hash == code_hash))
    if family is None and spent is not None and spent.get("client_id") == client_id \
            and spent.get("account_id"):
        # No tokens written for the code yet (its first redemption is on its way, or was
        # refused): a revoked family takes the code's place, so a write still to come
        # fails as a replay and nothing is issued.
        if insert_revoked_family(db, _family_of_code(code_hash, spent), "code_replay"):
            audit(db, "token.code_replay", outcome="refused", client_id=client_id,
                  account_id=spent["account_id"], before_tokens=True)
            return
        family = db.scalar(select(TokenFamily).where(TokenFamily.code_hash == code_hash))
    if family is None or family.client_id != client_id:
        return
    revoke_family(db, family.id, "code_replay")
    audit(db, "token.code_replay", outcome="refused", client_id=family.client_id,
          account_id=family.account_id)


def _family_of_code(code_hash: str, record: dict[str, Any]) -> dict[str, Any]:
    return family_row(
        client_id=record["client_id"], account_id=record["account_id"], code_hash=code_hash,
        scope=record.get("scope") or "", auth_time=int(record.get("auth_time") or 0),
        acr=record.get("acr") or "", amr=list(record.get("amr") or []),
        sid=record.get("sid") or "", absolute_lifetime=0)


def _active_account(account_id: str, client_row: Any) -> Account | None:
    """The account if it is active, unlocked and may use this app (a graduate only an app
    that allows graduates, in the grace period): else invalid_grant."""
    account = services().accounts.active(account_id)
    if account is None or not may_use_client(account, client_row):
        return None
    return account


class OpenIDTokenExtension:
    """Adds the ID token to code and refresh token responses for ``openid`` requests.

    On refresh the new ID token keeps ``iss``, ``sub``, ``aud``, ``auth_time``, ``acr`` and
    ``amr`` of the original sign-in (OIDC Core §12.2)."""

    def __call__(self, grant) -> None:
        grant.register_hook("after_create_token_response", self.add_id_token)

    def add_id_token(self, grant, response) -> None:
        _status, token, _headers = response
        scopes = scope_to_list(token.get("scope") or "")
        if "openid" not in scopes:
            return
        svc = services()
        request = grant.request
        if request.authorization_code is not None:
            auth = request.authorization_code.auth
            nonce = request.authorization_code.get_nonce()
        else:
            family = request.refresh_token.family
            auth = AuthContext(family.auth_time, family.acr, list(family.amr), family.sid)
            nonce = None
        if request.authorization_code is not None:
            # The one home of the disclosure record: one row per sign-in at an app. A
            # refresh (and UserInfo) re-delivers what this sign-in already released.
            after_commit(request, functools.partial(
                record_disclosure, svc.events, account_id=request.user.id,
                client_id=request.client.client_id, scopes=scopes, via=VIA_ID_TOKEN))
        token["id_token"] = issue_id_token(
            keys=svc.keys, issuer=svc.settings.issuer,
            pairwise_secret=svc.settings.pairwise_secret, client_row=request.client.row,
            account=request.user, scopes=scopes, auth=auth,
            lifetime=svc.settings.id_token_lifetime, nonce=nonce,
            access_token=token.get("access_token"))
