"""The JSON admin API under ``/api/admin`` (described by ``/api/openapi.json``).

Authentication is a bearer admin API token (never a cookie, so no CSRF token is needed);
the token acts with its owner's current role, checked on every request by :mod:`roles`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, stream_with_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts import codes
from idp.accounts.cards import card_status
from idp.accounts.roles import STAFF_ROLES, Action, Actor, Forbidden, require
from idp.admin import accounts, audit_log, credentials
from idp.admin.openapi import openapi_document
from idp.audit import audit
from idp.clients import access_tokens, metadata, registry
from idp.clients.registry import ClientMetadataError, register_client
from idp.extensions import csrf
from idp.services import services
from idp.store.admin_models import InitialAccessToken
from idp.store.models import Client

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin")
docs_bp = Blueprint("api_docs", __name__, url_prefix="/api")
# Bearer-token API: no cookies are read, so there is nothing for CSRF to protect.
csrf.exempt(bp)
csrf.exempt(docs_bp)


class ApiError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def _error(status: int, error: str, description: str) -> Response:
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer realm="mynagate-admin", error="{error}"'
    return response


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return _error(exc.status, exc.error, exc.description)


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden):
    return _error(403, "forbidden", str(exc))


@bp.errorhandler(accounts.NotFound)
def _not_found(exc: accounts.NotFound):
    return _error(404, "not_found", str(exc))


@bp.errorhandler(accounts.AdminInputError)
def _bad_input(exc: accounts.AdminInputError):
    return _error(400, exc.code, str(exc))


@bp.errorhandler(ClientMetadataError)
def _bad_metadata(exc: ClientMetadataError):
    return _error(400, exc.code, str(exc))


@bp.errorhandler(credentials.CredentialError)
@bp.errorhandler(access_tokens.AccessTokenError)
def _bad_credential(exc: credentials.CredentialError | access_tokens.AccessTokenError):
    return _error(400, "invalid_request", str(exc))


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "invalid_token", "an admin API bearer token is required")
    return value.strip()


def api_route(rule: str, methods: list[str]):
    """Open a unit of work, authenticate the bearer, hand the view (db, actor)."""

    def decorate(view: Callable[..., Any]):
        @bp.route(rule, methods=methods, endpoint=view.__name__)
        @wraps(view)
        def wrapper(**kwargs):
            token = _bearer()
            with services().db.session() as db:
                actor = credentials.actor_for_api_token(db, token)
                if actor is None:
                    raise ApiError(401, "invalid_token", "the token is unknown, expired or "
                                   "revoked, or its owner is no longer active")
                if not actor.is_admin:
                    raise Forbidden("this account is not an admin")
                g.admin_actor = actor
                result = view(db, actor, **kwargs)
            if isinstance(result, Response):
                return result
            body, status = result if isinstance(result, tuple) else (result, 200)
            response = jsonify(body) if body is not None else Response(status=status)
            response.status_code = status
            response.headers["Cache-Control"] = "no-store"
            return response

        return wrapper

    return decorate


def _json_object() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    return data


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_request", f"{name} must be an integer {low}-{high}")
    return int(raw)


def _str_arg(name: str, max_len: int) -> str | None:
    """A query string argument within the maxLength /api/openapi.json states (refused, not
    cut: a cut filter would quietly answer another question)."""
    raw = request.args.get(name)
    if raw is not None and len(raw) > max_len:
        raise ApiError(400, "invalid_request", f"{name} is at most {max_len} characters")
    return raw or None


def _bool_arg(name: str) -> bool:
    raw = (request.args.get(name) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise ApiError(400, "invalid_request", f"{name} must be true or false")
    return raw in ("true", "1")


# ----------------------------------------------------------------------------- clients
def _client(db: Session, client_id: str) -> Client:
    row = db.get(Client, client_id) if len(client_id) <= 64 else None
    if row is None:
        raise ApiError(404, "not_found", "no such client")
    return row


@api_route("/clients", ["GET"])
def list_clients(db: Session, actor: Actor):
    require(actor, Action.CLIENTS)
    rows = db.scalars(select(Client).order_by(Client.created_at))
    return {"clients": [metadata.admin_view(r) for r in rows]}


@api_route("/clients", ["POST"])
def create_client(db: Session, actor: Actor):
    require(actor, Action.CLIENTS)
    spec = metadata.spec_from_metadata(_json_object())
    registry.check_admin_choices(request.get_json(silent=True))
    row, secret = register_client(services(), spec, actor=actor.account_id)
    row = registry.admin_choices(db, db.get(Client, row.client_id),  # committed: reload
                                 request.get_json(silent=True), actor=actor.account_id)
    body = metadata.admin_view(row)
    body["client_secret"] = secret
    return body, 201


@api_route("/clients/<client_id>", ["GET"])
def get_client(db: Session, actor: Actor, client_id: str):
    require(actor, Action.CLIENTS)
    return metadata.admin_view(_client(db, client_id))


@api_route("/clients/<client_id>", ["PUT"])
def update_client(db: Session, actor: Actor, client_id: str):
    require(actor, Action.CLIENTS)
    row = _client(db, client_id)
    data = _json_object()
    spec = metadata.spec_from_metadata(data)
    secret = registry.update_client(services(), db, row, spec, actor=actor.account_id)
    if isinstance(data.get("enabled"), bool) and data["enabled"] != row.enabled:
        registry.set_enabled(db, row, data["enabled"], actor=actor.account_id)
    registry.admin_choices(db, row, data, actor=actor.account_id)
    body = metadata.admin_view(row)
    if secret:
        body["client_secret"] = secret
    return body


@api_route("/clients/<client_id>", ["DELETE"])
def delete_client(db: Session, actor: Actor, client_id: str):
    require(actor, Action.CLIENTS)
    registry.delete_client(db, _client(db, client_id), actor=actor.account_id)
    return None, 204


@api_route("/clients/<client_id>/disable", ["POST"])
def disable_client(db: Session, actor: Actor, client_id: str):
    require(actor, Action.CLIENTS)
    row = _client(db, client_id)
    registry.set_enabled(db, row, False, actor=actor.account_id)
    return metadata.admin_view(row)


@api_route("/clients/<client_id>/enable", ["POST"])
def enable_client(db: Session, actor: Actor, client_id: str):
    require(actor, Action.CLIENTS)
    row = _client(db, client_id)
    registry.set_enabled(db, row, True, actor=actor.account_id)
    return metadata.admin_view(row)


@api_route("/clients/<client_id>/rotate-secret", ["POST"])
def rotate_client_secret(db: Session, actor: Actor, client_id: str):
    require(actor, Action.CLIENTS)
    secret = registry.rotate(db, _client(db, client_id), actor=actor.account_id)
    return {"client_id": client_id, "client_secret": secret}


# ----------------------------------------------------------------------------- IATs
def _iat_view(row: InitialAccessToken) -> dict[str, Any]:
    return {"id": row.id, "label": row.label, "allowed_scopes": row.allowed_scopes,
            "max_uses": row.max_uses, "uses": row.uses,
            "expires_at": row.expires_at.isoformat() + "Z",
            "revoked": row.revoked_at is not None}


@api_route("/initial-access-tokens", ["GET"])
def list_iats(db: Session, actor: Actor):
    require(actor, Action.INITIAL_ACCESS_TOKENS)
    rows = db.scalars(select(InitialAccessToken).order_by(InitialAccessToken.created_at))
    return {"initial_access_tokens": [_iat_view(r) for r in rows]}


@api_route("/initial-access-tokens", ["POST"])
def create_iat(db: Session, actor: Actor):
    require(actor, Action.INITIAL_ACCESS_TOKENS)
    data = _json_object()
    days, uses = data.get("days", 7), data.get("max_uses", 1)
    label, scopes = data.get("label", ""), data.get("allowed_scopes")
    if not isinstance(days, int) or isinstance(days, bool) or not isinstance(uses, int) \
            or isinstance(uses, bool) or not isinstance(label, str) or \
            (scopes is not None and (not isinstance(scopes, list)
                                     or not all(isinstance(s, str) for s in scopes))):
        raise ApiError(400, "invalid_request",
                       "days/max_uses are integers, label a string, allowed_scopes strings")
    row, value = access_tokens.issue_initial_access_token(
        db, created_by=actor.account_id, label=label, days=days, max_uses=uses,
        allowed_scopes=scopes)
    audit(db, "iat.issued", actor=actor.account_id, iat_id=row.id, max_uses=uses)
    body = _iat_view(row)
    body["token"] = value
    return body, 201


@api_route("/initial-access-tokens/<iat_id>", ["DELETE"])
def revoke_iat(db: Session, actor: Actor, iat_id: str):
    require(actor, Action.INITIAL_ACCESS_TOKENS)
    row = db.get(InitialAccessToken, iat_id) if len(iat_id) <= 32 else None
    if row is None:
        raise ApiError(404, "not_found", "no such initial access token")
    if row.revoked_at is None:
        from idp.store.models import utcnow

        row.revoked_at = utcnow()
        audit(db, "iat.revoked", actor=actor.account_id, iat_id=row.id)
    return None, 204


# ----------------------------------------------------------------------------- schools
@api_route("/schools", ["GET"])
def list_schools(db: Session, actor: Actor):
    return {"schools": [accounts.school_view(s) for s in accounts.list_schools(db, actor)]}


@api_route("/schools", ["POST"])
def create_school(db: Session, actor: Actor):
    data = _json_object()
    code, name = data.get("code"), data.get("name")
    if not isinstance(code, str) or not isinstance(name, str):
        raise ApiError(400, "invalid_request", "code and name are strings")
    return accounts.school_view(accounts.create_school(db, actor, code, name)), 201


# ----------------------------------------------------------------------------- accounts
def _school_id_arg(db: Session) -> str | None:
    code = request.args.get("school_code")
    if not code:
        return None
    school = accounts.school_by_code(db, code[:64])
    if school is None:
        raise ApiError(404, "not_found", "no such school")
    return school.id


@api_route("/accounts", ["GET"])
def list_accounts(db: Session, actor: Actor):
    rows, total = accounts.list_accounts(
        db, actor, school_id=_school_id_arg(db), query=_str_arg("q", 64) or "",
        limit=_int_arg("limit", 100, 1, 500), offset=_int_arg("offset", 0, 0, 10**6))
    return {"total": total, "accounts": [accounts.account_view(a) for a in rows]}


@api_route("/accounts", ["POST"])
def create_account(db: Session, actor: Actor):
    data = _json_object()
    fields = {k: data.get(k, "") for k in ("school_code", "login_id", "display_name", "role",
                                          "grade", "class_name")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise ApiError(400, "invalid_request", "every field is a string")
    school = accounts.school_by_code(db, fields["school_code"][:64])
    if school is None:
        raise ApiError(400, "unknown_school", "no such school")
    row, code = accounts.create_account(
        db, actor, school_id=school.id, login_id=fields["login_id"],
        display_name=fields["display_name"], role=fields["role"] or "student",
        grade=fields["grade"], class_name=fields["class_name"])
    body = accounts.account_view(row)
    body["reset_code"] = code
    if row.role in STAFF_ROLES:  # shown once, to the admin who made the account
        body["enrolment_code"] = accounts.issue_enrolment_code(db, row,
                                                               actor_id=actor.account_id)
    return body, 201


@api_route("/accounts/<account_id>", ["GET"])
def get_account(db: Session, actor: Actor, account_id: str):
    row = accounts.load_account(db, actor, account_id)
    body = accounts.account_view(row)
    body["cards"] = [accounts.card_view(c) for c in accounts.account_cards(db, row.id)]
    body["guessing"] = services().throttle.guessing_flag(row.id)  # sustained wrong passwords
    return body


@api_route("/accounts/<account_id>/lock", ["POST"])
def lock_account(db: Session, actor: Actor, account_id: str):
    row = accounts.load_account(db, actor, account_id)
    accounts.set_locked(services(), db, actor, row, True)
    return accounts.account_view(row)


@api_route("/accounts/<account_id>/unlock", ["POST"])
def unlock_account(db: Session, actor: Actor, account_id: str):
    row = accounts.load_account(db, actor, account_id)
    accounts.set_locked(services(), db, actor, row, False)
    return accounts.account_view(row)


@api_route("/accounts/<account_id>/end-sessions", ["POST"])
def end_account_sessions(db: Session, actor: Actor, account_id: str):
    row = accounts.load_account(db, actor, account_id)
    return {"ended": accounts.end_sessions(services(), db, actor, row)}


@api_route("/accounts/<account_id>/reset-code", ["POST"])
def reset_code(db: Session, actor: Actor, account_id: str):
    row = accounts.load_account(db, actor, account_id)
    code = accounts.issue_reset_code(services(), db, actor, row)
    # The cards that still sign in after the reset (unlink: POST /cards/{id}/revoke).
    cards = [accounts.card_view(c) for c in accounts.account_cards(db, row.id)
             if card_status(c) == "active"]
    return {"account_id": row.id, "reset_code": code, "linked_cards": cards,
            "expires_in": int(codes.RESET_CODE_LIFETIME.total_seconds())}, 201


@api_route("/accounts/<account_id>/enrolment-code", ["POST"])
def enrolment_code(db: Session, actor: Actor, account_id: str):
    row = accounts.load_account(db, actor, account_id)
    code = accounts.issue_enrolment_code(db, row, actor_id=actor.account_id)
    return {"account_id": row.id, "enrolment_code": code,
            "expires_in": int(codes.ENROLMENT_CODE_LIFETIME.total_seconds())}, 201


@api_route("/cards/<card_id>/revoke", ["POST"])
def revoke_card(db: Session, actor: Actor, card_id: str):
    return accounts.card_view(accounts.revoke_card(services(), db, actor, card_id))


# ----------------------------------------------------------------------------- audit
def _audit_filter(db: Session) -> audit_log.AuditFilter:
    try:
        since = audit_log.parse_date(request.args.get("since"))
        until = audit_log.parse_date(request.args.get("until"))
    except ValueError as exc:
        raise ApiError(400, "invalid_request", "since/until are YYYY-MM-DD") from exc
    return audit_log.AuditFilter(
        account_id=_str_arg("account_id", 32), client_id=_str_arg("client_id", 64),
        event=_str_arg("event", 64), since=since, until=until,
        school_id=_school_id_arg(db))


@api_route("/audit", ["GET"])
def audit_events(db: Session, actor: Actor):
    services().events.flush()  # the records an SSO flow left in the event log, too
    rows = audit_log.search(db, actor, _audit_filter(db),
                            limit=_int_arg("limit", 100, 1, 500),
                            offset=_int_arg("offset", 0, 0, 10**7))
    return {"events": [audit_log.event_view(r) for r in rows]}


@api_route("/audit.csv", ["GET"])
def audit_csv(db: Session, actor: Actor):
    services().events.flush()
    lines = list(audit_log.export_csv(db, actor, _audit_filter(db)))
    audit(db, "audit.exported", actor=actor.account_id, rows=len(lines) - 1)
    return Response(stream_with_context(iter(lines)), mimetype="text/csv", headers={
        "Content-Disposition": "attachment; filename=audit.csv", "Cache-Control": "no-store"})


@api_route("/settings/audit-retention", ["GET"])
def get_retention(db: Session, actor: Actor):
    require(actor, Action.SETTINGS)
    return {"days": audit_log.retention_days(db)}


@api_route("/settings/audit-retention", ["PUT"])
def put_retention(db: Session, actor: Actor):
    days = _json_object().get("days")
    try:
        audit_log.set_retention_days(db, actor, days)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    return {"days": days}


@api_route("/audit/purge", ["POST"])
def purge_audit(db: Session, actor: Actor):
    require(actor, Action.SETTINGS)
    return {"deleted": audit_log.purge(db, actor=actor.account_id)}


# ----------------------------------------------------------------------------- document
@docs_bp.get("/openapi.json")
def openapi():
    response = jsonify(openapi_document(services().settings.issuer))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


from idp.admin import roster_api  # noqa: E402,F401  (the roster routes, added to bp)
