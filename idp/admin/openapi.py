"""The OpenAPI 3.1 description of the admin API (served at ``/api/openapi.json``)."""

from __future__ import annotations

from typing import Any

from idp.input_limits import JSON_MAX_BYTES, JSON_MAX_DEPTH
from idp.oidc.clients import AUTH_METHODS, ID_TOKEN_ALGS
from idp.oidc.scopes import SUPPORTED_SCOPES
from idp.signin.context import ACR_LEVELS

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
}


def _op(op_id: str, summary: str, tag: str, ok: dict[str, Any], *,
        body: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None,
        not_found: bool = False, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    responses = dict(ok)
    responses.update(ERRORS)
    if not_found:
        responses["404"] = {"$ref": "#/components/responses/NotFound"}
    responses.update(extra or {})
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "tags": [tag],
                          "responses": responses}
    if body is not None:
        op["requestBody"] = body
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 64,
                       "pattern": "^[A-Za-z0-9_-]+$"}}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    # The limits every JSON body is read within (idp.input_limits); larger or deeper is a 400.
    return {"required": True, "content": {JSON: {"schema": schema}},
            "description": f"at most {JSON_MAX_BYTES} bytes, nested at most "
                           f"{JSON_MAX_DEPTH} levels",
            "x-max-bytes": JSON_MAX_BYTES, "x-max-depth": JSON_MAX_DEPTH}


def openapi_document(issuer: str) -> dict[str, Any]:
    client_id, account_id = _path_param("client_id"), _path_param("account_id")
    date = {"type": "string", "format": "date"}
    audit_params = [
        _query("account_id", {"type": "string", "maxLength": 32}),
        _query("client_id", {"type": "string", "maxLength": 64}),
        _query("event", {"type": "string", "maxLength": 64},
               "an event name, or a prefix ending in '.' (e.g. 'client.')"),
        _query("since", date), _query("until", date, "inclusive"),
        _query("school_code", {"type": "string", "maxLength": 64}),
    ]
    csv_body = {"required": True, "content": {
        "text/csv": {"schema": {"type": "string"}},
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string",
                                                                   "format": "binary"}}}}}}
    deactivate = _query("deactivate_missing", {"type": "boolean"},
                        "deactivate active students of the file's schools not in the file")
    no_content = {"204": {"description": "done"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Mynagate admin API",
            "version": "1.0.0",
            "description": "Administration of relying parties, schools, accounts, card "
                           "bindings and the audit log. Authenticate with an admin API token "
                           "(`Authorization: Bearer mgadm_...`) made on the admin pages. "
                           "Dynamic client registration (RFC 7591/7592) is at /register. "
                           f"Every JSON body is at most {JSON_MAX_BYTES} bytes and nests at "
                           f"most {JSON_MAX_DEPTH} levels (x-max-bytes, x-max-depth).",
        },
        "servers": [{"url": issuer}],
        "security": [{"adminToken": []}],
        "tags": [{"name": n} for n in ("clients", "registration", "schools", "accounts",
                                       "roster", "audit")],
        "paths": {
            "/api/admin/clients": {
                "get": _op("listClients", "List relying parties", "clients",
                           {"200": _json({"type": "object", "properties": {
                               "clients": {"type": "array", "items": _ref("Client")}}},
                               "the clients")}),
                "post": _op("createClient", "Register a relying party", "clients",
                            {"201": _json(_ref("ClientWithSecret"),
                                          "created; client_secret shown once")},
                            body=_json_body(_ref("ClientMetadata"))),
            },
            "/api/admin/clients/{client_id}": {
                "parameters": [client_id],
                "get": _op("getClient", "One relying party", "clients",
                           {"200": _json(_ref("Client"), "the client")}, not_found=True),
                "put": _op("updateClient", "Replace a relying party's metadata", "clients",
                           {"200": _json(_ref("ClientWithSecret"), "updated")},
                           body=_json_body(_ref("ClientMetadata")), not_found=True),
                "delete": _op("deleteClient", "Delete a relying party (its consents and "
                              "tokens go with it)", "clients", no_content, not_found=True),
            },
            "/api/admin/clients/{client_id}/disable": {
                "parameters": [client_id],
                "post": _op("disableClient", "Disable (its tokens stop working at once)",
                            "clients", {"200": _json(_ref("Client"), "disabled")},
                            not_found=True)},
            "/api/admin/clients/{client_id}/enable": {
                "parameters": [client_id],
                "post": _op("enableClient", "Enable again", "clients",
                            {"200": _json(_ref("Client"), "enabled")}, not_found=True)},
            "/api/admin/clients/{client_id}/rotate-secret": {
                "parameters": [client_id],
                "post": _op("rotateClientSecret", "New client secret (shown once)", "clients",
                            {"200": _json({"type": "object", "required": ["client_secret"],
                                           "properties": {
                                               "client_id": {"type": "string"},
                                               "client_secret": {"type": "string"}}},
                                          "the new secret")}, not_found=True)},
            "/api/admin/initial-access-tokens": {
                "get": _op("listInitialAccessTokens", "Initial access tokens", "registration",
                           {"200": _json({"type": "object", "properties": {
                               "initial_access_tokens": {"type": "array",
                                                         "items": _ref("InitialAccessToken")}}},
                               "the tokens (never their values)")}),
                "post": _op("createInitialAccessToken", "Issue an initial access token",
                            "registration",
                            {"201": _json(_ref("InitialAccessTokenWithValue"),
                                          "issued; token shown once")},
                            body=_json_body({"type": "object", "properties": {
                                "label": {"type": "string", "maxLength": 200},
                                "days": {"type": "integer", "minimum": 1, "maximum": 90},
                                "max_uses": {"type": "integer", "minimum": 1,
                                             "maximum": 1000},
                                "allowed_scopes": {"type": "array", "items": {
                                    "type": "string", "enum": SUPPORTED_SCOPES}}}})),
            },
            "/api/admin/initial-access-tokens/{iat_id}": {
                "parameters": [_path_param("iat_id")],
                "delete": _op("revokeInitialAccessToken", "Revoke", "registration",
                              no_content, not_found=True)},
            "/api/admin/schools": {
                "get": _op("listSchools", "Schools the caller may see", "schools",
                           {"200": _json({"type": "object", "properties": {
                               "schools": {"type": "array", "items": _ref("School")}}},
                               "the schools")}),
                "post": _op("createSchool", "Create a school", "schools",
                            {"201": _json(_ref("School"), "created")},
                            body=_json_body({"type": "object", "required": ["code", "name"],
                                             "properties": {
                                                 "code": {"type": "string", "maxLength": 64},
                                                 "name": {"type": "string",
                                                          "maxLength": 200}}})),
            },
            "/api/admin/accounts": {
                "get": _op("listAccounts", "Accounts (a school admin: own school only)",
                           "accounts",
                           {"200": _json({"type": "object", "properties": {
                               "total": {"type": "integer"},
                               "accounts": {"type": "array", "items": _ref("Account")}}},
                               "the accounts")},
                           params=[_query("school_code", {"type": "string", "maxLength": 64}),
                                   _query("q", {"type": "string", "maxLength": 64}),
                                   _query("limit", {"type": "integer", "minimum": 1,
                                                    "maximum": 500}),
                                   _query("offset", {"type": "integer", "minimum": 0})],
                           not_found=True),
                "post": _op("createAccount", "Create an account (no password; a reset code "
                            "is returned once for its owner)", "accounts",
                            {"201": _json(_ref("AccountWithResetCode"), "created")},
                            body=_json_body({"type": "object",
                                             "required": ["school_code", "login_id"],
                                             "properties": {
                                                 "school_code": {"type": "string",
                                                                 "maxLength": 64},
                                                 "login_id": {"type": "string",
                                                              "maxLength": 64},
                                                 "display_name": {"type": "string",
                                                                  "maxLength": 200},
                                                 "role": {"type": "string", "enum": [
                                                     "student", "teacher", "school_admin",
                                                     "platform_admin"]},
                                                 "grade": {"type": "string",
                                                           "maxLength": 16},
                                                 "class_name": {"type": "string",
                                                                "maxLength": 32}}})),
            },
            "/api/admin/accounts/{account_id}": {
                "parameters": [account_id],
                "get": _op("getAccount", "One account with its cards", "accounts",
                           {"200": _json(_ref("Account"), "the account")}, not_found=True)},
            **{f"/api/admin/accounts/{{account_id}}/{action}": {
                "parameters": [account_id],
                "post": _op(op, summary, "accounts", ok, not_found=True)}
               for action, op, summary, ok in (
                   ("lock", "lockAccount", "Lock (and end its sessions)",
                    {"200": _json(_ref("Account"), "locked")}),
                   ("unlock", "unlockAccount", "Unlock",
                    {"200": _json(_ref("Account"), "unlocked")}),
                   ("end-sessions", "endAccountSessions", "End all its sessions",
                    {"200": _json({"type": "object", "properties": {
                        "ended": {"type": "integer"}}}, "ended")}),
                   ("reset-code", "issueResetCode", "One-time password reset code",
                    {"201": _json({"type": "object", "properties": {
                        "account_id": {"type": "string"}, "reset_code": {"type": "string"},
                        "linked_cards": {"type": "array", "items": _ref("Card")},
                        "expires_in": {"type": "integer"}}}, "the code, shown once, and "
                        "the cards that still sign in")}),
                   ("enrolment-code", "issueEnrolmentCode",
                    "One-time TOTP enrolment code for a staff account (72 h)",
                    {"201": _json({"type": "object", "properties": {
                        "account_id": {"type": "string"},
                        "enrolment_code": {"type": "string"},
                        "expires_in": {"type": "integer"}}}, "the code, shown once")}))},
            "/api/admin/cards/{card_id}/revoke": {
                "parameters": [_path_param("card_id")],
                "post": _op("revokeCard", "Revoke a card binding", "accounts",
                            {"200": _json(_ref("Card"), "revoked")}, not_found=True)},
            "/api/admin/roster/preview": {
                "post": _op("previewRoster", "What importing this CSV would do", "roster",
                            {"200": _json(_ref("RosterPlan"), "the plan")},
                            body=csv_body, params=[deactivate])},
            "/api/admin/roster/import": {
                "post": _op("importRoster", "Import a roster CSV (all or nothing)", "roster",
                            {"200": _json(_ref("RosterPlan"), "applied"),
                             "422": _json(_ref("RosterPlan"),
                                          "not applied: the file has errors")},
                            body=csv_body, params=[deactivate])},
            "/api/admin/roster/sheets/{sheet_id}": {
                "parameters": [_path_param("sheet_id")],
                "get": _op("rosterSheet", "First-password sheets (PDF, per class)", "roster",
                           {"200": {"description": "PDF", "content": {
                               "application/pdf": {"schema": {"type": "string",
                                                              "format": "binary"}}}}},
                           not_found=True)},
            "/api/admin/audit": {
                "get": _op("listAuditEvents", "Audit events, newest first", "audit",
                           {"200": _json({"type": "object", "properties": {
                               "events": {"type": "array", "items": _ref("AuditEvent")}}},
                               "the events")},
                           params=[*audit_params,
                                   _query("limit", {"type": "integer", "minimum": 1,
                                                    "maximum": 500}),
                                   _query("offset", {"type": "integer", "minimum": 0})],
                           not_found=True)},
            "/api/admin/audit.csv": {
                "get": _op("exportAuditEvents", "Audit events as CSV", "audit",
                           {"200": {"description": "CSV", "content": {
                               "text/csv": {"schema": {"type": "string"}}}}},
                           params=audit_params, not_found=True)},
            "/api/admin/audit/purge": {
                "post": _op("purgeAuditEvents", "Delete events older than the retention",
                            "audit", {"200": _json({"type": "object", "properties": {
                                "deleted": {"type": "integer"}}}, "purged")})},
            "/api/admin/settings/audit-retention": {
                "get": _op("getAuditRetention", "Audit retention (days)", "audit",
                           {"200": _json(_ref("Retention"), "the setting")}),
                "put": _op("setAuditRetention", "Set the audit retention", "audit",
                           {"200": _json(_ref("Retention"), "saved")},
                           body=_json_body(_ref("Retention")))},
        },
        "components": {
            "securitySchemes": {"adminToken": {
                "type": "http", "scheme": "bearer",
                "description": "an admin API token (mgadm_...) from /admin/tokens"}},
            "responses": {
                name: _json(_ref("Error"), text) for name, text in (
                    ("BadRequest", "bad input (error names the problem)"),
                    ("Unauthorized", "no valid admin API token"),
                    ("Forbidden", "the token's owner may not do this"),
                    ("NotFound", "no such object"))},
            "schemas": _schemas(),
        },
    }


def _schemas() -> dict[str, Any]:
    string, nullable = {"type": "string"}, {"type": ["string", "null"]}
    uris = {"type": "array", "items": {"type": "string", "maxLength": 500}, "maxItems": 20}
    metadata = {
        "type": "object", "required": ["client_name", "redirect_uris"],
        "properties": {
            "client_name": {"type": "string", "maxLength": 200},
            "redirect_uris": uris,
            "post_logout_redirect_uris": uris,
            "sector_identifier_uri": {"type": "string", "maxLength": 500},
            "token_endpoint_auth_method": {"type": "string", "enum": AUTH_METHODS},
            "grant_types": {"type": "array", "items": {
                "type": "string", "enum": ["authorization_code", "refresh_token"]}},
            "response_types": {"type": "array", "items": {"const": "code"}},
            "scope": {"type": "string", "description": "space-separated; of "
                      + " ".join(SUPPORTED_SCOPES)},
            "jwks": {"type": "object"},
            "jwks_uri": {"type": "string", "maxLength": 500},
            "id_token_signed_response_alg": {"type": "string", "enum": ID_TOKEN_ALGS},
            "required_acr": {"type": "string", "enum": sorted(ACR_LEVELS)},
            "logo_uri": {"type": "string", "maxLength": 500},
            "contacts": uris,
            "access_token_lifetime": {"type": "integer", "minimum": 60, "maximum": 86400},
            "refresh_token_lifetime": {"type": "integer", "minimum": 300,
                                       "maximum": 7776000},
            "enabled": {"type": "boolean"},
        },
    }
    client = {"type": "object", "properties": {
        **metadata["properties"],
        "client_id": string, "enabled": {"type": "boolean"}, "sector": string,
        "subject_type": {"const": "pairwise"},
        "sector_identifier_uri": nullable, "jwks_uri": nullable, "logo_uri": nullable,
        "required_acr": nullable, "jwks": {"type": ["object", "null"]},
        "access_token_lifetime": {"type": ["integer", "null"]},
        "refresh_token_lifetime": {"type": ["integer", "null"]},
        "client_id_issued_at": {"type": ["integer", "null"]}, "created_at": nullable}}
    with_secret = {"allOf": [_ref("Client"), {"type": "object", "properties": {
        "client_secret": {"type": ["string", "null"]}}}]}
    account = {"type": "object", "properties": {
        "id": string, "school_code": string, "login_id": string, "display_name": string,
        "role": string, "grade": string, "class_name": string, "active": {"type": "boolean"},
        "locked": {"type": "boolean"}, "has_password": {"type": "boolean"},
        "created_at": nullable, "cards": {"type": "array", "items": _ref("Card")},
        "guessing": {"type": ["object", "null"], "properties": {
            "since": string, "failures": {"type": "integer"}}}}}
    iat = {"type": "object", "properties": {
        "id": string, "label": string, "allowed_scopes": {"type": "array", "items": string},
        "max_uses": {"type": "integer"}, "uses": {"type": "integer"},
        "expires_at": string, "revoked": {"type": "boolean"}}}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {
            "error": string, "error_description": {"type": ["string", "null"]}}},
        "ClientMetadata": metadata,
        "Client": client,
        "ClientWithSecret": with_secret,
        "School": {"type": "object", "properties": {"id": string, "code": string,
                                                    "name": string}},
        "Account": account,
        "AccountWithResetCode": {"allOf": [_ref("Account"), {"type": "object", "properties": {
            "reset_code": string, "enrolment_code": string}}]},
        "Card": {"type": "object", "properties": {
            "id": string, "account_id": string, "issuer": string, "serial": string,
            "not_after": nullable, "status": {"enum": ["active", "expired", "revoked"]},
            "created_at": nullable, "last_used_at": nullable, "revoked_at": nullable}},
        "InitialAccessToken": iat,
        "InitialAccessTokenWithValue": {"allOf": [_ref("InitialAccessToken"), {
            "type": "object", "properties": {"token": string}}]},
        "RosterPlan": {"type": "object", "properties": {
            "valid": {"type": "boolean"}, "applied": {"type": "boolean"},
            "sheet_id": nullable,
            "summary": {"type": "object", "additionalProperties": {"type": "integer"}},
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "line": {"type": "integer"}, "code": string, "field": nullable,
                "detail": string}}},
            "create": {"type": "array"}, "update": {"type": "array"},
            "deactivate": {"type": "array"}}},
        "AuditEvent": {"type": "object", "properties": {
            "id": {"type": "integer"}, "at": string, "event": string, "outcome": string,
            "actor": nullable, "account_id": nullable, "school_id": nullable,
            "client_id": nullable, "ip": nullable, "details": {"type": "object"}}},
        "Retention": {"type": "object", "required": ["days"], "properties": {
            "days": {"type": "integer", "minimum": 30, "maximum": 3650}}},
    }
