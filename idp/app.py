"""The app factory: wires settings, stores, Authlib, blueprints, i18n, CSRF and headers."""

from __future__ import annotations

import logging
import re
from typing import Any

import structlog
from flask import (
    Flask,
    current_app,
    g,
    has_request_context,
    jsonify,
    render_template,
    request,
    session,
)
from flask.sessions import NullSession
from flask_babel import get_translations
from flask_wtf.csrf import CSRFError
from markupsafe import Markup, escape
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import BadRequest, HTTPException

from idp.account.first_password_views import bp as first_password_bp
from idp.account.guardian_views import bp as guardian_bp
from idp.account.my_page_views import bp as account_bp
from idp.account.totp_views import bp as account_totp_bp
from idp.accounts.cache import AccountCache, ConsentCache

# Operations kept in files of their own add their routes to the admin API's blueprint.
from idp.admin import guardian_api, school_year_api, transfer_api  # noqa: F401
from idp.admin.api import bp as admin_api_bp
from idp.admin.api import docs_bp as api_docs_bp
from idp.admin.views import bp as admin_bp
from idp.auth.card import CardService, build_card_service
from idp.auth.card_views import bp as card_bp
from idp.auth.help_views import bp as help_bp
from idp.auth.login_views import bp as auth_bp
from idp.auth.pairing_views import bp as pairing_bp
from idp.clients.cache import ClientCache
from idp.event_log import open_event_log
from idp.extensions import babel, csrf
from idp.fragments import once_per_language
from idp.input_limits import NUL_REFUSAL, BoundedRequest, json_has_nul, urlencoded_has_nul
from idp.keys import SigningKeys
from idp.oidc.registration import bp as registration_bp
from idp.oidc.server import build_authorization_server
from idp.oidc.views import BACK_CHANNEL_PATHS
from idp.oidc.views import bp as oidc_bp
from idp.ops.request_log import install_request_log
from idp.ops.views import SESSIONLESS_PATHS
from idp.ops.views import bp as ops_bp
from idp.services import Services
from idp.settings import Settings, SettingsError
from idp.signin.sessions import StoreSessionInterface
from idp.signin.throttle import Throttle
from idp.store import access_cache
from idp.store.bus import open_bus
from idp.store.db import Database
from idp.store.shortlived import StoreUnavailable, open_store

# JSON/form endpoints used by programs, not browsers with our forms: no CSRF token there.
API_PATHS = ("/token", "/revoke", "/introspect", "/userinfo", "/register", "/api/")
LOCALES = ("ja", "en")
# Every page and endpoint group, registered in this order (the one list: a new room's
# blueprint is added here).
BLUEPRINTS = (oidc_bp, auth_bp, card_bp, admin_bp, admin_api_bp, api_docs_bp, account_bp,
              guardian_bp, first_password_bp, account_totp_bp, registration_bp, pairing_bp,
              help_bp, ops_bp)


def first_supported_locale(asked: str) -> str | None:
    """The first of space-separated BCP 47 tags (``ui_locales="fr en-US"``) we can show.

    OIDC Core §3.1.2.1: ui_locales lists preferences in order; tags we do not have are
    skipped, and a region (``en-US``) falls back to its language.
    """
    for tag in asked.split():
        language = tag.split("-", 1)[0].lower()
        if language in LOCALES:
            return language
    return None


def select_locale() -> str:
    asked = first_supported_locale(request.args.get("lang", "")) or \
        first_supported_locale(request.args.get("ui_locales", ""))
    if asked:
        if not isinstance(session, NullSession):  # a sessionless path has none to keep it
            session["lang"] = asked
        return asked
    if session.get("lang") in LOCALES:
        return session["lang"]
    return current_app.extensions["mynagate"].settings.default_locale


def _request_translations():
    """The request's catalog, looked up once: Flask-Babel's template callables ask for it
    on every sentence (three context lookups each), and a card page has dozens. Its
    locale is decided once per request anyway (Flask-Babel caches it the same way)."""
    if not has_request_context():
        return get_translations()
    found = g.get("_mynagate_translations")
    if found is None:
        found = g._mynagate_translations = get_translations()
    return found


def install_request_translations(app: Flask) -> None:
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _request_translations().ugettext(s),
        ngettext=lambda s, p, n: _request_translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _request_translations().unpgettext(c, s, p, n))


def lang_url(code: str) -> str:
    from urllib.parse import urlencode

    args = request.args.to_dict(flat=False)
    args["lang"] = [code]
    args.pop("ui_locales", None)
    return request.path + "?" + urlencode(args, doseq=True)


class MynagateFlask(Flask):
    """Flask, but whether a view or hook is a coroutine function is looked up once per
    function. Flask asks it of the view and of every hook on every request (64 times in one
    card sign-in), and what a function is never changes. ``ensure_sync`` is Flask's own
    place for changing this."""

    _KEPT_AT_MOST = 4096  # views, hooks and handlers: a few hundred

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_forms: dict[Any, Any] = {}

    def ensure_sync(self, func: Any) -> Any:
        try:
            return self._sync_forms[func]
        except KeyError:
            sync = super().ensure_sync(func)
            if len(self._sync_forms) < self._KEPT_AT_MOST:
                self._sync_forms[func] = sync
            return sync
        except TypeError:  # not hashable: asked each time, as Flask does
            return super().ensure_sync(func)


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or Settings.load(overrides or None)
    configure_logging(settings.log_level)
    app = MynagateFlask(__name__)
    # Every JSON body is read within one size and depth limit (idp.input_limits).
    app.request_class = BoundedRequest
    app.config.update(
        SECRET_KEY=settings.secret_key,
        WTF_CSRF_TIME_LIMIT=None,  # the session's own limits bound the token
        WTF_CSRF_SSL_STRICT=False,  # Referrer-Policy: no-referrer means there is no Referer
        BABEL_DEFAULT_LOCALE="ja",
        BABEL_TRANSLATION_DIRECTORIES="translations",
        MAX_CONTENT_LENGTH=1024 * 1024,
        TEMPLATES_AUTO_RELOAD=settings.is_development,
    )
    svc = build_services(settings)
    app.extensions["mynagate"] = svc
    app.session_interface = StoreSessionInterface(
        svc.store, idle=settings.session_idle, absolute=settings.session_absolute,
        secure=settings.issuer_is_https,
        sessionless=SESSIONLESS_PATHS | BACK_CHANNEL_PATHS)
    # First of the request hooks: every answer, an early refusal too, has an id and a line.
    install_request_log(app, trust_incoming_id=settings.trusted_proxy_hops > 0)
    babel.init_app(app, locale_selector=select_locale)
    install_request_translations(app)
    install_input_guard(app)
    csrf.init_app(app)
    build_authorization_server(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    # /authorize accepts POST from any RP page (OIDC Core §3.1.2.1): its CSRF defence is
    # state/PKCE, not a form token.
    for view in ("oidc.authorize", "oidc.token", "oidc.revoke", "oidc.introspect",
                 "oidc.userinfo"):
        csrf.exempt(app.view_functions[view])
    csrf.exempt(ops_bp)  # probes and the scraper post nothing and hold no session
    install_crl_refresher(app, svc.card)

    if settings.trusted_proxy_hops:
        # Behind a reverse proxy: take the client address and scheme from the proxy's
        # X-Forwarded-* headers (only as many hops as configured), so per-IP throttling
        # sees students, not the proxy.
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    install_security_headers(app, https=settings.issuer_is_https)
    install_error_handlers(app)

    app.add_template_filter(furigana)
    app.add_template_global(once_per_language)
    app.add_template_filter(reading)

    @app.context_processor
    def inject_globals():
        from flask_babel import get_locale

        return {"lang": str(get_locale() or "ja"), "issuer": settings.issuer,
                "dev_mode": settings.is_development, "lang_url": lang_url}

    @app.get("/")
    def index():
        return render_template("index.html")

    return app


# The catalog's furigana, once escaped: <ruby>漢字<rt>かんじ</rt></ruby> with plain text inside.
_ESCAPED_RUBY = re.compile(r"&lt;ruby&gt;([^&<]*)&lt;rt&gt;([^&<]*)&lt;/rt&gt;&lt;/ruby&gt;")
_RUBY = re.compile(r"<ruby>([^<]*)<rt>([^<]*)</rt></ruby>")


def furigana(text: Any) -> Markup:
    """A sentence from the code (an error, a notice after a redirect) with the furigana
    its catalog entry carries. Like card.js's setText: only a ruby element with plain text
    inside becomes markup, so nothing else in the sentence (a name, an app's name) can."""
    escaped = str(escape(text))  # all of it escaped: the only markup is what is put back
    return Markup(_ESCAPED_RUBY.sub(r"<ruby>\1<rt>\2</rt></ruby>", escaped))  # noqa: S704


def reading(text: Any) -> Markup:
    """A sentence for where no markup can go (the page's <title>): each word with
    furigana is written in its reading instead (確認 -> かくにん)."""
    escaped = str(escape(text))
    return Markup(_ESCAPED_RUBY.sub(r"\2", _RUBY.sub(r"\2", escaped)))  # noqa: S704


def build_services(settings: Settings) -> Services:
    store = open_store(settings.redis_url)
    database = Database(settings.database_url)
    access_cache.attach(database, store)
    try:
        card = build_card_service(settings, store)
    except ValueError as exc:  # unreadable anchors, missing revocation settings
        raise SettingsError(f"card sign-in: {exc}") from exc
    bus = open_bus(store, settings.database_url, settings.redis_url)
    return Services(
        settings=settings, db=database, store=store,
        keys=SigningKeys(database, settings.keys_dir, settings.signing_key_retention),
        throttle=Throttle(store, secret=settings.secret_key), card=card,
        bus=bus, clients=ClientCache(database, bus), accounts=AccountCache(database, bus),
        consents=ConsentCache(database, bus), events=open_event_log(database, store))


def install_crl_refresher(app: Flask, card: CardService) -> None:
    if card.refresher is None:
        return
    refresher = card.refresher

    @app.before_request
    def keep_crls_fresh() -> None:
        refresher.ensure_running()  # once per process; cheap afterwards


def install_security_headers(app: Flask, *, https: bool) -> None:
    csp = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "connect-src 'self' http://127.0.0.1:47263 http://localhost:47263; "
           "frame-ancestors 'none'; form-action 'self' http: https:; base-uri 'none'; "
           "object-src 'none'")
    # Always these values, whatever a view set; CSP and Cache-Control only where a view set
    # none of its own.
    always = [("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"),
              ("X-Content-Type-Options", "nosniff")]
    if https:
        always.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
    always_names = [(name.lower(), name, value) for name, value in always]

    @app.after_request
    def headers(response):
        # One look at the names the response has (werkzeug's set() scans them all for each
        # header it sets: this hook was a sixth of a request's framework work).
        h = response.headers
        present = {name.lower() for name, _ in h.items()}
        if "content-security-policy" not in present:
            h.add("Content-Security-Policy", csp)
        for lowered, name, value in always_names:
            if lowered in present:
                h.set(name, value)
            else:
                h.add(name, value)
        if "cache-control" not in present and \
                (response.content_type or "").startswith("text/html"):
            h.add("Cache-Control", "no-store")
        return response


def _wants_json() -> bool:
    return request.path.startswith(API_PATHS) or request.path.startswith("/login/card/") \
        or request.is_json or request.accept_mimetypes.best == "application/json"


def _carries_nul() -> bool:
    """Whether the query, a form field or a JSON body holds U+0000 (uploaded files are the
    views' business: a roster file is checked as a file). The query and a urlencoded body
    are looked at as sent; the form is parsed later from the same cached bytes."""
    req = request._get_current_object()  # (on every request: no proxy lookup per access)
    if urlencoded_has_nul(req.query_string):
        return True
    mimetype = req.mimetype
    if mimetype == "application/x-www-form-urlencoded":
        return urlencoded_has_nul(req.get_data(cache=True))
    if req.is_json:
        return json_has_nul(req.get_data(cache=True))
    if mimetype == "multipart/form-data":
        # A multipart part can come without a name (None): refused by the caller anyway.
        return any("\x00" in (key or "") or "\x00" in (value or "")
                   for key, value in req.form.items(multi=True))
    return False


def install_input_guard(app: Flask) -> None:
    """Refuse what no view can use, before any other check (the CSRF check included)."""

    @app.before_request
    def refuse_nul_characters():
        # U+0000 is never meaningful in a login id, a redirect URI or a client id, and
        # PostgreSQL cannot store it while SQLite can: refuse it at the door, the same on
        # both backends, before any view sees it.
        if _carries_nul():
            raise BadRequest(NUL_REFUSAL)
        # A multipart part without a name cannot be any field we read, and the CSRF check
        # would trip on it (a None key): refuse it here, as the client's error.
        if request.mimetype == "multipart/form-data" and \
                (None in request.form or None in request.files):
            raise BadRequest("a form field in the request has no name")


def install_error_handlers(app: Flask) -> None:
    log = structlog.get_logger("idp")

    def unavailable(exc: Exception):
        log.error("backend_unavailable", error=str(exc)[:200])
        if _wants_json():
            response = jsonify(error="temporarily_unavailable",
                               error_description="the service is busy; try again shortly")
            response.status_code = 503
        else:
            response = app.response_class(
                render_template("unavailable.html"), status=503, mimetype="text/html")
        response.headers["Retry-After"] = "5"
        response.headers["Cache-Control"] = "no-store"
        return response

    app.register_error_handler(StoreUnavailable, unavailable)
    app.register_error_handler(OperationalError, unavailable)
    app.register_error_handler(DBAPIError, unavailable)
    # Every pooled connection busy for pool_timeout: the database is there but saturated.
    app.register_error_handler(PoolTimeout, unavailable)

    @app.errorhandler(DataError)
    def data_refused(exc: DataError):
        # The database refused a value the request carried (a character PostgreSQL cannot
        # store, a number out of range): the client's input, not an outage. The unit of work
        # was rolled back, so nothing is half written.
        log.warning("request_data_refused", error=str(exc.orig)[:200])
        return http_error(BadRequest("a value in the request cannot be used"))

    @app.before_request
    def refuse_when_store_down():
        if getattr(session, "store_down", False):
            raise StoreUnavailable("session store unreachable")

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        # The CSRF check runs before refuse_when_store_down: a session that could not be
        # read has no token to match, and the form has not expired; the store is down.
        if getattr(session, "store_down", False):
            return unavailable(StoreUnavailable("session store unreachable"))
        return render_template("error.html", error="csrf",
                               description=None, csrf_expired=True), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if _wants_json():
            code = "invalid_request" if exc.code and exc.code < 500 else "server_error"
            response = jsonify(error=code, error_description=exc.description)
            response.status_code = exc.code or 500
        else:
            response = app.response_class(
                render_template("error.html", error=str(exc.code),
                                description=exc.description, http_error=True),
                status=exc.code or 500, mimetype="text/html")
        return _keep_exception_headers(response, exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        # A bug, not bad input: log it with its trace and say so plainly.
        log.exception("unhandled_error")
        if _wants_json():
            return jsonify(error="server_error", error_description="internal error"), 500
        return render_template("error.html", error="server_error", description=None), 500


def _keep_exception_headers(response, exc: HTTPException):
    """The exception's own headers stay on the page or JSON that replaces its body: a 405
    keeps ``Allow`` (RFC 9110 §15.5.6), a 401 its ``WWW-Authenticate``."""
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


#: Marks the handler configure_logging installed, so building another app (tests, the
#: demo's several apps) replaces it instead of adding a second one.
_HANDLER_NAME = "mynagate-json"


def json_formatter() -> logging.Formatter:
    """One JSON object per line, for structlog's events and the standard library's records
    alike (``idp.jpki``, gunicorn, werkzeug), each with the request's context variables
    (its ``request_id``)."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED_PROCESSORS,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(ensure_ascii=False)])


_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars, structlog.stdlib.add_logger_name,
    structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True)]


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    # Like logging.basicConfig: a process whose logging someone else set up (a test runner,
    # an embedding server) keeps its handlers and level; they can use json_formatter().
    if all(h.get_name() == _HANDLER_NAME for h in root.handlers):
        root.setLevel(getattr(logging, level.upper(), logging.INFO))
        handler = logging.StreamHandler()
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(json_formatter())
        root.handlers = [handler]
    structlog.configure(
        # filter_by_level first: an event below the logger's level is dropped before the
        # rest of the chain (context, timestamp) runs; without it every access line and
        # audit echo paid for all of it on every request, then the standard library dropped
        # it. It asks the logger each time, so a level changed later still counts.
        processors=[structlog.stdlib.filter_by_level, *_SHARED_PROCESSORS,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
