"""Dynamic client registration (RFC 7591) and its management API (RFC 7592).

Registration is open only to the bearer of an initial access token a platform admin issued;
the token's policy limits the scopes a client may get. Redirect URIs must be https (http only
on loopback) — the core's ``validate_spec`` enforces that, and registration itself goes
through the core's one ``register_client``. The response carries a registration access token
(stored hashed on the client) for reading, replacing and deleting the registration.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request, url_for

from idp.audit import audit
from idp.clients import metadata, registry
from idp.clients.access_tokens import (
    consume_initial_access_token,
    issue_registration_access_token,
    registration_access_token_matches,
)
from idp.clients.registry import (
    ClientMetadataError,
    ClientSpec,
    default_client_name,
    register_client,
    scopes_within,
)
from idp.extensions import csrf
from idp.services import services
from idp.store.models import Client

bp = Blueprint("registration", __name__)


def _error(status: int, error: str, description: str):
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    return response


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _json_body():
    if request.mimetype != "application/json":
        return None
    return request.get_json(silent=True)


def _registration_response(row: Client, *, secret: str | None, rat: str | None, status: int):
    body = metadata.client_metadata(row)
    body = {k: v for k, v in body.items() if v is not None}
    if secret:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = 0
    if rat:
        body["registration_access_token"] = rat
    body["registration_client_uri"] = services().settings.issuer + url_for(
        "registration.manage", client_id=row.client_id)
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post("/register")
def register():
    svc = services()
    token = _bearer()
    if token is None:
        return _error(401, "invalid_token", "an initial access token is required "
                      "(Authorization: Bearer ...); ask the platform administrator")
    # The token is checked before the body is even read: without a valid token a caller
    # learns nothing about which metadata would pass.
    with svc.db.session() as db:
        iat = consume_initial_access_token(db, token)
        if iat is None:
            return _error(401, "invalid_token",
                          "the initial access token is unknown, expired, revoked or used up")
        iat_id, allowed = iat.id, list(iat.allowed_scopes or [])
        db.commit()  # the use is spent even if the metadata turns out bad: no retry oracle
    try:
        spec = _registration_spec(_json_body(), allowed)
        row, secret = register_client(svc, spec, actor=f"iat:{iat_id}")
    except ClientMetadataError as exc:
        with svc.db.session() as db:
            audit(db, "client.registration_refused", outcome="refused",
                  actor=f"iat:{iat_id}", reason=exc.code)
        return _error(400, exc.code, str(exc))
    with svc.db.session() as db:
        row = db.get(Client, row.client_id)
        rat = issue_registration_access_token(row)
    return _registration_response(row, secret=secret, rat=rat, status=201)


def _registration_spec(data: object, allowed: list[str]) -> ClientSpec:
    """RFC 7591 metadata under an initial access token's policy (see scopes_within)."""
    if not isinstance(data, dict):
        raise ClientMetadataError(
            "the body must be a JSON object (Content-Type: application/json)")
    spec = metadata.spec_from_metadata(data, name_required=False)
    default_client_name(spec)
    spec.scopes = scopes_within(spec.scopes, allowed, "this initial access token")
    return spec


def _authorised_client(db, client_id: str) -> Client | None:
    token = _bearer()
    row = db.get(Client, client_id) if len(client_id) <= 64 else None
    return row if registration_access_token_matches(row, token) else None


@bp.route("/register/<client_id>", methods=["GET", "PUT", "DELETE"])
def manage(client_id: str):
    """RFC 7592. An unknown client and a wrong token get the same 401 (§2: no oracle)."""
    svc = services()
    with svc.db.session() as db:
        row = _authorised_client(db, client_id)
        if row is None:
            return _error(401, "invalid_token", "the registration access token is not valid "
                          "for this client")
        if request.method == "GET":
            return _registration_response(row, secret=None, rat=None, status=200)
        if request.method == "DELETE":
            registry.delete_client(db, row, actor=f"rat:{client_id}")
            db.commit()
            response = svc_empty(204)
            return response
        data = _json_body()
        if not isinstance(data, dict):
            return _error(400, "invalid_client_metadata", "the body must be a JSON object")
        if data.get("client_id") not in (None, client_id):
            return _error(400, "invalid_client_metadata", "client_id does not match")
        try:
            spec = metadata.spec_from_metadata(data, name_required=False)
            default_client_name(spec)
            # A registration access token never widens the client: its current scopes are
            # the ceiling, and an empty or missing scope keeps them (never "all").
            spec.scopes = scopes_within(spec.scopes, list(row.scopes or []),
                                        "this client's registration")
            secret = registry.update_client(svc, db, row, spec,
                                                 actor=f"rat:{client_id}")
        except ClientMetadataError as exc:
            db.rollback()
            return _error(400, exc.code, str(exc))
        db.commit()
        return _registration_response(row, secret=secret, rat=None, status=200)


def svc_empty(status: int):
    from flask import Response

    response = Response(status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


# Programs register with a bearer token, not a browser form: nothing for CSRF to protect.
csrf.exempt(register)
csrf.exempt(manage)
