"""Every request's id, its access-log line and its latency and 5xx metrics.

The id comes from the trusted reverse proxy's ``X-Request-ID`` when the provider is behind
one (``IDP_TRUSTED_PROXY_HOPS`` > 0) and the value is plainly an id (:data:`REQUEST_ID`);
otherwise, and always without a proxy, one is generated. A value with newlines, spaces or
hundreds of characters is never logged or echoed: it would let a client write lines of its
own into the log or split a response header.

The id is bound into structlog's context variables for the request, so every log line the
request writes carries it, and it is sent back in ``X-Request-ID``.

The access line names the Flask endpoint, never the path: paths carry pairing codes and
client ids, and the endpoint keeps the metric series bounded.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

import structlog
from flask import Flask, Response, g, request

from idp.metrics import observe_request

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"  # the same header, as WSGI names it
#: What an incoming id may look like: a UUID, a ULID, hex, a proxy's own token.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}")

access_log = structlog.get_logger("idp.access")


def new_request_id() -> str:
    return uuid.uuid4().hex


def incoming_request_id(value: str | None, *, trusted: bool) -> str | None:
    """The proxy's id if it may be used as is, else None."""
    if not trusted or not value or not REQUEST_ID.fullmatch(value):
        return None
    return value


def install_request_log(app: Flask, *, trust_incoming_id: bool) -> None:
    """Register the hooks; call before every other ``before_request`` so that an early
    refusal (a NUL in the query, the store down) still has an id and an access line."""
    # The access line is built only when its logger would write it (a busy deployment may
    # log warnings only): structlog would build the whole event before dropping it.
    access_logger = logging.getLogger("idp.access")

    @app.before_request
    def start_request() -> None:
        # forget_request cleared the thread's last request at its end; cleared again here
        # (a microsecond) in case a teardown before it raised and Flask skipped the rest.
        structlog.contextvars.clear_contextvars()
        request_id = incoming_request_id(request.environ.get(_REQUEST_ID_ENVIRON),
                                         trusted=trust_incoming_id) or new_request_id()
        g.request_id = request_id
        g.request_started = time.perf_counter()
        structlog.contextvars.bind_contextvars(request_id=request_id)

    @app.after_request
    def finish_request(response: Response) -> Response:
        started = g.get("request_started")
        seconds = time.perf_counter() - started if started is not None else 0.0
        request_id = g.get("request_id") or new_request_id()
        # add, not set: nothing else writes this header, so no scan of the others for it.
        response.headers.add(REQUEST_ID_HEADER, request_id)
        req = request._get_current_object()  # (on every request: one proxy lookup)
        endpoint = req.endpoint or "unmatched"
        observe_request(endpoint, req.method, response.status_code, seconds)
        if access_logger.isEnabledFor(logging.INFO):
            access_log.info("request", method=req.method, endpoint=endpoint,
                            status=response.status_code,
                            duration_ms=round(seconds * 1000, 1), request_id=request_id)
        return response

    @app.teardown_request
    def forget_request(_exc: BaseException | None) -> None:
        # Runs after every request, whatever happened in it: the thread's next request
        # (gthread threads serve many) starts with no id nor anything else bound.
        structlog.contextvars.clear_contextvars()
