"""Protocol endpoints. Views parse, call and render; the rules live in the modules they call."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import structlog
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AccessDeniedError,
    InvalidRequestError,
    OAuth2Request,
    scope_to_list,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from idp.accounts.lifecycle import graduate_access_ends, may_use_client
from idp.audit import audit
from idp.input_limits import MalformedBasic, parse_basic
from idp.japan_time import japan_date
from idp.keys import ALGORITHMS as SIGNING_ALGORITHMS
from idp.oidc import prompts
from idp.oidc.claims import subject_for, userinfo_claims
from idp.oidc.discovery import provider_metadata
from idp.oidc.interaction import TXN_PARAM, LoginTransaction
from idp.oidc.server import transport_uri
from idp.oidc.tokens import find_active_access_token
from idp.services import services
from idp.signin.context import SignedInUser
from idp.signin.current import current_user, must_change_now, sign_out
from idp.store.shortlived import StoreUnavailable

bp = Blueprint("oidc", __name__)
log = structlog.get_logger("idp.oidc")

#: Endpoints a relying party's server (or a library fetching metadata) calls, never a
#: person's browser on our pages: they answer from their own credentials alone, so the
#: session interface neither reads a browser session nor sets a cookie for them. A browser
#: cookie sent along (a same-site fetch) then grants nothing, and a back-channel call costs
#: no session-store round trip.
BACK_CHANNEL_PATHS = frozenset({
    "/token", "/revoke", "/introspect", "/userinfo", "/jwks.json",
    "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"})


def server():
    return current_app.extensions["mynagate.oauth2"]


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


# ----------------------------------------------------------------------------- discovery
@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def discovery():
    response = jsonify(provider_metadata(services().settings.issuer))
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/jwks.json")
def jwks():
    response = jsonify(services().keys.public_jwks())
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# ----------------------------------------------------------------------------- authorize
def _redirect_error(error: OAuth2Error):
    """Send an error back to a verified redirect URI (with ``iss``, RFC 9207), or show a
    page when the client or redirect URI could not be trusted (never redirect then)."""
    if error.redirect_uri:
        response = server().handle_error_response(None, error)
        location = response.headers["Location"]
        sep = "&" if "?" in location else "?"
        response.headers["Location"] = (
            location + sep + urlencode({"iss": services().settings.issuer}))
        return response
    return render_template("error.html", error=error.error,
                           description=error.description), 400


def _without_echo(error: OAuth2Error) -> OAuth2Error:
    """Don't reflect the request's own response_type back in the error text."""
    if error.error == "unsupported_response_type":
        error.description = "only response_type=code is supported"
    return error


def _parse_max_age(raw: str | None, redirect_uri: str) -> int | None:
    if raw in (None, ""):
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise InvalidRequestError("max_age must be a non-negative integer",
                                  redirect_uri=redirect_uri)
    return int(raw)


class RequestNotSupportedError(OAuth2Error):
    error = "request_not_supported"


class RequestUriNotSupportedError(OAuth2Error):
    error = "request_uri_not_supported"


def _refuse_unsupported(data: dict, prompts: list[str], redirect_uri: str) -> None:
    """Refuse what discovery says is unsupported rather than silently ignore it (OIDC Core
    §6.1, §6.2), and ``prompt=none`` mixed with other values (§3.1.2.1)."""
    if data.get("request"):
        raise RequestNotSupportedError("request objects are not supported",
                                       redirect_uri=redirect_uri)
    if data.get("request_uri"):
        raise RequestUriNotSupportedError("request_uri is not supported",
                                          redirect_uri=redirect_uri)
    if "none" in prompts and len(set(prompts)) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with other values",
                                  redirect_uri=redirect_uri)


def _hinted_subject(hint: str | None, redirect_uri: str) -> str | None:
    if not hint:
        return None
    svc = services()
    try:
        token = jwt.decode(hint, svc.keys.public_keyset(), algorithms=list(SIGNING_ALGORITHMS))
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidRequestError("id_token_hint is not an ID token from this provider",
                                  redirect_uri=redirect_uri) from exc
    if token.claims.get("iss") != svc.settings.issuer:
        raise InvalidRequestError("id_token_hint was issued by another provider",
                                  redirect_uri=redirect_uri)
    sub = token.claims.get("sub")
    return sub if isinstance(sub, str) else None


def _remember_ui_locale(ui_locales: str | None) -> None:
    for locale in (ui_locales or "").split():
        if locale.split("-")[0] in ("ja", "en"):
            session["lang"] = locale.split("-")[0]
            return


def _policy_inputs(user: SignedInUser | None, client, payload,
                   txn: LoginTransaction | None) -> tuple:
    """The plain values :func:`prompts.decide` judges, parsed from the request, the session,
    the client, the stored consent and the login transaction. Raises OAuth2Error for a
    malformed request."""
    svc = services()
    data, redirect_uri = payload.data, payload.redirect_uri
    prompt_values = (data.get("prompt") or "").split()
    _refuse_unsupported(data, prompt_values, redirect_uri)
    asked = prompts.RequestParams(
        prompts=frozenset(prompt_values),
        max_age=_parse_max_age(data.get("max_age"), redirect_uri),
        hinted_sub=_hinted_subject(data.get("id_token_hint"), redirect_uri),
        acr_values=tuple((data.get("acr_values") or "").split()),
        scopes=tuple(scope_to_list(client.get_allowed_scope(payload.scope or "")) or ()))
    policy = prompts.ClientPolicy(required_acr=client.row.required_acr or None)
    if user is None:
        return (asked, prompts.SessionState(), policy, prompts.ConsentState(),
                prompts.InteractionState())
    signed_in = prompts.SessionState(
        signed_in=True, auth_time=user.auth.auth_time, acr=user.auth.acr,
        sub=subject_for(svc.settings.pairwise_secret, client.row, user.account.id))
    granted = prompts.ConsentState(
        svc.consents.scopes(user.account.id, client.get_client_id()))
    interaction = prompts.InteractionState(
        signed_in_now=bool(txn and txn.signed_in_during(user.auth.auth_time)),
        consent_answered=bool(txn and txn.answered_consent))
    return asked, signed_in, policy, granted, interaction


PROMPT_ERRORS: dict[str, type[OAuth2Error]] = {
    "login_required": LoginRequiredError, "consent_required": ConsentRequiredError}


def _interact(decision: prompts.Decision, payload, client, txn: LoginTransaction | None):
    """Send the person to the sign-in or consent page (or, under prompt=none, the app the
    error), inside a login transaction the page resumes."""
    if decision.error:
        error = PROMPT_ERRORS[decision.error](redirect_uri=payload.redirect_uri)
        error.state = payload.state
        return _redirect_error(error)
    params = {k: v for k, v in payload.data.items() if k != TXN_PARAM and isinstance(v, str)}
    if decision.prompt == prompts.LOGIN or txn is None:
        # A sign-in always starts a new transaction: the one in the URL may be old.
        txn = LoginTransaction.start(params, card_required=decision.card_required,
                                     client_name=client.name,
                                     client_id=client.get_client_id())
    if decision.prompt == prompts.LOGIN:
        return redirect(url_for("auth.login", txn=txn.id, reason=decision.reason), 303)
    return redirect(url_for("auth.consent", txn=txn.id), 303)


def _graduate_refused(user: SignedInUser, payload, client):
    """A graduate asked for an app that is not for graduates (or their grace period is
    over): a page saying so in words a child follows, with a way back to the app, which
    then gets ``access_denied`` (under prompt=none the app gets it at once)."""
    error = AccessDeniedError("this account has graduated and this app does not allow "
                              "graduates", redirect_uri=payload.redirect_uri)
    error.state = payload.state
    services().events.audit("authorize.graduate_refused", outcome="refused",
                            client_id=client.get_client_id(), account_id=user.account.id)
    back = _redirect_error(error)
    if "none" in (payload.data.get("prompt") or "").split():
        return back
    ends = graduate_access_ends(user.account)
    return render_template("graduate_refused.html", client_name=client.name,
                           back_url=back.headers.get("Location"),
                           access_ends=japan_date(ends) if ends else None), 403


@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    user = current_user()
    try:
        grant = server().get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return _redirect_error(_without_echo(error))
    except ValueError:
        # Authlib refuses to build an error whose text would echo certain characters from
        # the request; answer with a page, never a redirect built from such input.
        return render_template("error.html", error="invalid_request",
                               description="malformed authorization request"), 400
    txn = LoginTransaction.load(request.values.get(TXN_PARAM))
    if txn is not None and txn.client_id != grant.client.get_client_id():
        txn = None  # another app's transaction: it resumes nothing here
    return _answer(grant, user, txn)


def _answer(grant, user: SignedInUser | None, txn: LoginTransaction | None, *,
            browser_here: bool = True):
    """Answer a validated authorization request: the code (or, after the consent page's
    "no", access_denied) to the app, else the page the person must see first.

    ``browser_here=False``: the browser is not at /authorize but on the page that just
    finished an interaction (:func:`continue_authorization`). Then only an answer that
    goes to the app is given, and None for anything the browser must be shown here."""
    payload, client = grant.request.payload, grant.client
    _remember_ui_locale(payload.data.get("ui_locales"))
    if user is not None and not may_use_client(user.account, client.row):
        return _graduate_refused(user, payload, client) if browser_here else None
    try:
        decision = prompts.decide(*_policy_inputs(user, client, payload, txn),
                                  now=time.time())
    except OAuth2Error as error:
        if not browser_here:
            return None
        error.state = payload.state
        return _redirect_error(error)
    if not decision.proceed:
        return _interact(decision, payload, client, txn) if browser_here else None
    if txn is not None and txn.denied:
        txn.finish()
        txn.answered = True
        # The person said no on the consent page: access_denied back to the app.
        return server().create_authorization_response(
            request=grant.request, grant_user=None, grant=grant)
    svc = services()
    # The code's record, its audit event and the end of the transaction go to Redis in
    # one round trip, sent before the answer leaves (with what an outer batch holds: the
    # card check's events), so that a store that cannot take them fails here: then no
    # code reaches the app, no issue is recorded and the transaction lives on.
    with svc.store.batched(flush=True):
        # The request the consent grant parsed, not a new one made from Flask's again.
        answer = server().create_authorization_response(
            request=grant.request, grant_user=user, grant=grant)
        svc.events.audit("authorize.code_issued", client_id=client.get_client_id(),
                         account_id=user.account.id, acr=user.auth.acr,
                         lost_with_batch=True)
        if txn is not None:
            txn.finish()
    if txn is not None:
        txn.answered = True
    return answer


class _StoredAuthorizationRequest(OAuth2Request):
    """A login transaction's authorization request, as the browser would send it to
    /authorize to resume it (the parameters the transaction stored, and its id)."""

    def __init__(self, txn: LoginTransaction) -> None:
        super().__init__("GET", transport_uri(request))
        self.payload = BasicOAuth2Payload({**txn.params, TXN_PARAM: txn.id})

    @property
    def args(self):
        return self.payload.data

    @property
    def form(self):
        return {}


def continue_authorization(txn: LoginTransaction, **changes: Any) -> str:
    """Where the browser goes once the person signed in, or answered the consent page, in
    ``txn``: when the authorization request can be answered now, straight to the app
    with its answer (the code), which saves the browser a round trip through /authorize
    on the way; else the transaction's resume URL, where /authorize judges it again and
    shows what the person must see (another sign-in, the consent page, a refusal).

    ``changes`` are what the interaction just did to the transaction (``authenticated_at``,
    ``consented_at``, ``denied``). They are stored only when the browser goes the long way:
    an answered transaction ends, and storing them first would cost a write for nothing.

    Both ways the request is judged by the same :func:`_answer`, from the parameters the
    transaction stored, for the person signed in now."""
    txn.change(**changes)
    target = _answer_now(txn)
    if target is None:
        if not txn.answered:
            txn.save(if_alive=True)
        return txn.resume_url()
    return target


def _answer_now(txn: LoginTransaction) -> str | None:
    """The app's answer (its Location) when it can be given from here, else None."""
    user = current_user()
    # What /authorize's request hooks would stop before the view (idp.app and the web
    # rooms' before_request guards) stops this too. Of them only the first-password guard
    # can apply to a browser that has just signed in here; it sends it to the change page.
    if user is None or must_change_now():
        return None
    try:
        grant = server().get_consent_grant(request=_StoredAuthorizationRequest(txn),
                                           end_user=user)
        if txn.client_id != grant.client.get_client_id():
            return None
        answer = _answer(grant, user, txn, browser_here=False)
    except (OAuth2Error, ValueError):
        return None  # /authorize shows the refusal, as it would have
    except (StoreUnavailable, DBAPIError, PoolTimeout) as exc:
        # What the answer reads (the client, the consent) could not be read, or the code
        # could not be stored: the browser goes the long way, and /authorize answers when
        # the store is back (or says it is busy), as the round trip did.
        log.warning("answer_deferred_to_authorize", error=str(exc)[:200])
        return None
    if answer is None or answer.status_code != 302:
        return None
    return answer.headers["Location"]


# ----------------------------------------------------------------------------- token
def _malformed_client_auth():
    """Authlib assumes a well-formed Basic header (a non-UTF-8 one made it raise); answer a
    broken one as RFC 6749 §5.2 ``invalid_client`` saying what is wrong."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    parts = header.split(None, 1)
    if parts and parts[0].lower() == "basic":
        try:
            parse_basic(header)
            return None
        except MalformedBasic as exc:
            description = str(exc)
    elif " " not in header or (len(parts) == 2 and parts[1].strip()):
        return None
    else:
        description = "the Authorization header has no credentials"
    response = jsonify(error="invalid_client", error_description=description)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Basic realm="mynagate"'
    return _no_store(response)


@bp.post("/token")
def token():
    return _no_store(_malformed_client_auth() or server().create_token_response())


@bp.post("/revoke")
def revoke():
    return _no_store(_malformed_client_auth()
                     or server().create_endpoint_response("revocation"))


@bp.post("/introspect")
def introspect():
    return _no_store(_malformed_client_auth()
                     or server().create_endpoint_response("introspection"))


# ----------------------------------------------------------------------------- userinfo
def _bearer_error(error: str, description: str, status: int):
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    challenge = f'Bearer realm="mynagate", error="{error}"'
    response.headers["WWW-Authenticate"] = challenge
    return _no_store(response)


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    svc = services()
    header = request.headers.get("Authorization", "")
    value = None
    if header:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return _bearer_error("invalid_request", "use the Bearer scheme", 400)
        value = credentials.strip()
    elif request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        value = request.form.get("access_token")
    if not value:
        response = _bearer_error("invalid_request", "an access token is required", 401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="mynagate"'
        return response
    active = find_active_access_token(svc.db, svc.store, value, svc.clients.get,
                                      svc.accounts.get)
    if active is None:
        return _bearer_error("invalid_token", "the access token is not valid", 401)
    scopes = scope_to_list(active.scope)
    if "openid" not in scopes:
        return _bearer_error("insufficient_scope", "the openid scope is required", 403)
    claims = userinfo_claims(svc.settings.pairwise_secret, active.client, active.account,
                             scopes)
    return _no_store(jsonify(claims))


# ----------------------------------------------------------------------------- logout
def _asks_to_confirm(req, user: SignedInUser | None) -> bool:
    """Sign-out asks once, and only when the request cannot be trusted on its own (RP-initiated
    logout §6): no valid ``id_token_hint`` (anyone's page could have sent it), a
    ``post_logout_redirect_uri`` not registered for the hint's app, or a hint naming someone
    other than who is signed in here (an old tab's token)."""
    if req.needs_confirmation or req.client is None:
        return True
    if request.values.get("post_logout_redirect_uri") and not req.redirect_uri:
        return True
    if user is not None:
        sub = subject_for(services().settings.pairwise_secret, req.client.row, user.account.id)
        return req.id_token_claims.get("sub") != sub
    return False


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """RP-initiated logout 1.0: redirects only to a registered post_logout_redirect_uri; a
    valid request from the app signs out at once, any other asks first."""
    user = current_user()
    try:
        req = server().validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return render_template("error.html", error=error.error,
                               description=error.description), 400
    confirmed = request.method == "POST" and "confirm" in request.form
    if not confirmed and _asks_to_confirm(req, user):
        return render_template(
            "logout_confirm.html", signed_in=user is not None,
            client_name=req.client.name if req.client else None,
            params={k: v for k, v in request.values.items() if isinstance(v, str)})
    if user is not None:
        with services().db.session() as db:
            audit(db, "session.logout", account_id=user.account.id,
                  client_id=req.client.get_client_id() if req.client else None,
                  confirmed=confirmed)
    sign_out()
    if req.redirect_uri:
        return redirect(req.redirect_uri, 303)
    return render_template("logged_out.html")
