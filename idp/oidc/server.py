"""The Authlib authorization server, wired to Mynagate's storage."""

from __future__ import annotations

import functools
from urllib.parse import urlencode, urlsplit, urlunsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import (
    FlaskJsonRequest,
    FlaskOAuth2Payload,
    FlaskOAuth2Request,
)
from authlib.oauth2.rfc6749 import InvalidGrantError, OAuth2Request
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import request as flask_request

from idp.audit import audit
from idp.clients.auth_methods import AUTH_METHODS, CONFIDENTIAL_METHODS
from idp.keys import ALGORITHMS as SIGNING_ALGORITHMS
from idp.metrics import CountIssuedTokens
from idp.oidc.claims import introspection_claims
from idp.oidc.client_auth import register_assertion_methods
from idp.oidc.clients import OAuthClient
from idp.oidc.grants import (
    AuthorizationCodeGrant,
    OpenIDTokenExtension,
    RefreshTokenGrant,
    S256CodeChallenge,
    after_commit,
    stage_write,
)
from idp.oidc.tokens import (
    FamilyRef,
    account_may_use_tokens,
    family_row,
    find_token,
    insert_family_and_token,
    make_token_generator,
    revoke_family,
    rotate_refresh_token,
    token_row,
)
from idp.services import services
from idp.store import access_cache
from idp.store.models import utcnow


def transport_uri(req) -> str:
    """The URI an Authlib request holds, for the one use Authlib makes of it: the HTTPS
    check (InsecureTransportError.check looks at the scheme and host). ``request.url``
    would rebuild the whole URL, its query re-quoted, on every protocol request."""
    return f"{req.scheme}://{req.host}{req.path}"


class _FlaskRequest(FlaskOAuth2Request):
    """Authlib's Flask request, holding :func:`transport_uri` instead of ``request.url``."""

    def __init__(self, request) -> None:
        OAuth2Request.__init__(self, method=request.method, uri=transport_uri(request),
                               headers=request.headers)
        self._request = request
        self.payload = FlaskOAuth2Payload(request)


class MynagateAuthorizationServer(AuthorizationServer):
    # Authlib's Flask requests read the form through the request they hold, ~30 times a
    # flow: give them the request itself, not Flask's proxy to it (a context lookup on
    # every attribute). Authlib's own methods ignore their argument and take the proxy.
    def create_oauth2_request(self, request):
        if isinstance(request, OAuth2Request):
            return request  # one built here (a login transaction's stored request)
        return _FlaskRequest(flask_request._get_current_object())

    def create_json_request(self, request):
        return FlaskJsonRequest(flask_request._get_current_object())

    def query_client(self, client_id):
        row = services().clients.get(client_id)
        if row is None or not row.enabled:
            return None
        return OAuthClient(row)

    def save_token(self, token, request) -> None:
        svc = services()
        settings = svc.settings
        client_row = request.client.row
        refresh_lifetime = client_row.refresh_token_lifetime or settings.refresh_token_lifetime
        if request.authorization_code is not None:
            code = request.authorization_code
            auth = code.auth
            family_values = family_row(
                client_id=client_row.client_id, account_id=code.data["account_id"],
                code_hash=code.code_hash, scope=code.get_scope(), auth_time=auth.auth_time,
                acr=auth.acr, amr=auth.amr, sid=auth.sid, absolute_lifetime=refresh_lifetime)
            family = FamilyRef.of_row(family_values)
            stored = token_row(token, family, refresh_lifetime)
            stage_write(request, functools.partial(
                insert_family_and_token, svc.db, family_values, stored))
        else:
            family = FamilyRef.of(request.refresh_token.family)
            stored = token_row(token, family, refresh_lifetime)
            stage_write(request, functools.partial(
                _rotate, svc.db, request.refresh_token.row.id, stored))
        after_commit(request, functools.partial(
            access_cache.remember, svc.store, stored["access_token_hash"],
            family_id=family.id, client_id=family.client_id, account_id=family.account_id,
            scope=stored["scope"],
            issued_at=stored["issued_at"], expires_at=stored["access_expires_at"]))
        after_commit(request, functools.partial(
            svc.events.audit, "token.issued", client_id=client_row.client_id,
            account_id=family.account_id, grant_type=request.payload.grant_type,
            refresh=bool(token.get("refresh_token"))))


def _rotate(database, presented_id: str, successor: dict) -> None:
    if not rotate_refresh_token(database, presented_id, successor):
        # Of two concurrent uses the other won; this one gets nothing.
        raise InvalidGrantError("the refresh token was already used")


class TokenRevocation(RevocationEndpoint):
    """RFC 7009. Revoking a refresh token revokes its family; an unknown token is a 200."""

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        with services().db.session() as db:
            return find_token(db, token_string, token_type_hint)

    def revoke_token(self, token, request) -> None:
        with services().db.session() as db:
            row = db.merge(token.row)
            if token.presented_kind == "refresh_token":
                revoke_family(db, token.family.id, "revoked_by_client")
            else:
                access_cache.forget(db, [row.access_token_hash])
                row.revoked_at = utcnow()
            audit(db, "token.revoked", client_id=token.row.client_id,
                  account_id=token.row.account_id)


class TokenIntrospection(IntrospectionEndpoint):
    """RFC 7662: a client may introspect the tokens issued to itself."""

    CLIENT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def query_token(self, token_string, token_type_hint):
        with services().db.session() as db:
            return find_token(db, token_string, token_type_hint)

    def check_permission(self, token, client, request) -> bool:
        return token.check_client(client)

    def create_introspection_payload(self, token) -> dict:
        # Authlib's default judges every token by its *access* expiry, which would call a
        # live refresh token inactive once its access token expired; introspect_token
        # decides by the kind of token presented.
        if not token:
            return {"active": False}
        return self.introspect_token(token)

    def introspect_token(self, token) -> dict:
        svc = services()
        kind = token.presented_kind
        if kind == "refresh_token":
            active = token.is_refresh_usable(svc.settings.refresh_token_idle)
            exp = token.row.refresh_expires_at
        else:
            active = not token.is_expired() and not token.is_revoked()
            exp = token.row.access_expires_at
        if not active:
            return {"active": False}
        client_row = svc.clients.get(token.row.client_id)
        if client_row is None or not client_row.enabled:
            return {"active": False}
        with svc.db.session() as db:
            if not account_may_use_tokens(db, token.row.account_id, client_row):
                return {"active": False}
        return {
            "active": True,
            "client_id": token.row.client_id,
            "scope": token.row.scope,
            "token_type": kind,
            **introspection_claims(svc.settings.pairwise_secret, client_row,
                                   token.row.account_id),
            "aud": token.row.client_id,
            "iss": svc.settings.issuer,
            "exp": int(exp.timestamp()) if exp else None,
            "iat": int(token.row.issued_at.timestamp()),
        }


class EndSession(EndSessionEndpoint):
    """RP-initiated logout; the view signs the browser out after the person confirms."""

    def get_server_jwks(self):
        return services().keys.public_jwks()

    def get_algorithms(self) -> list[str]:
        return list(SIGNING_ALGORITHMS)

    def end_session(self, end_session_request) -> None:
        return None


class MynagateIssuer(IssuerParameter):
    """RFC 9207's ``iss`` in every authorization response, appended to the query the
    grant built (Authlib's own decodes and re-encodes the whole query once more: a tenth
    of an authorize request's CPU)."""

    def get_issuer(self) -> str:
        return services().settings.issuer

    def add_issuer_parameter(self, authorization_server, response) -> None:
        location = response.location
        if not location:
            return
        scheme, netloc, path, query, fragment = urlsplit(location)
        issuer = urlencode({"iss": self.get_issuer()})
        response.location = urlunsplit(
            (scheme, netloc, path, f"{query}&{issuer}" if query else issuer, fragment))


def build_authorization_server(app) -> MynagateAuthorizationServer:
    settings = app.extensions["mynagate"].settings
    server = MynagateAuthorizationServer()
    server.init_app(app)
    app.extensions["mynagate.oauth2"] = server
    # Unknown scopes are dropped by OAuthClient.get_allowed_scope rather than refused.
    server.scopes_supported = None
    server.register_token_generator(
        "default", make_token_generator(settings.access_token_lifetime))
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True),
                                                   OpenIDTokenExtension(), CountIssuedTokens()])
    server.register_grant(RefreshTokenGrant, [OpenIDTokenExtension(), CountIssuedTokens()])
    audiences = [settings.issuer + "/token", settings.issuer]
    register_assertion_methods(server, audiences)
    server.register_endpoint(TokenRevocation)
    server.register_endpoint(TokenIntrospection)
    server.register_endpoint(EndSession)
    server.register_extension(MynagateIssuer())
    return server
