"""The loopback HTTP API a sign-in page calls: `GET /v1/status`, `POST /v1/authenticate`.

Security model, in short:
- binds 127.0.0.1 only; the Host header must name it (defeats DNS rebinding);
- only origins given with --allow-origin may call it, the Origin header must equal the
  origin in the body, and the card signs that origin into the token (so a token cannot be
  replayed at another site);
- the PIN is asked in a local window, never accepted over HTTP;
- one card operation at a time (a second request gets 409, it does not queue up PIN
  windows).
Standard library only: the bridge is installed on school PCs without extra dependencies.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from card_bridge import __version__, local_page
from card_bridge.card import JpkiCard, PcscStatus, PcscTransport, pcsc_status
from card_bridge.errors import CardError, CardFailure
from card_bridge.events import Event, EventLog, say_in_window
from card_bridge.local_page import HEADERS as PAGE_HEADERS
from card_bridge.local_page import MAX_FORM, PageState, Reply
from card_bridge.origins import Site, clean_app_name, is_valid_challenge, normalize_origin
from card_bridge.pin import PinPrompt, default_prompt
from card_bridge.token import build_token, message_digest

DEFAULT_PORT = 47263
MAX_BODY = 4096
log = logging.getLogger(__name__)


@dataclass
class BridgeConfig:
    allowed_origins: frozenset[str]
    reader: str | None = None
    pin_prompt: PinPrompt | None = None
    # Injectable so tests can run the server without pcscd, or against a fake card.
    transport_factory: Callable[[], Any] | None = None
    status_fn: Callable[[], PcscStatus] | None = None
    version: str = __version__
    # What happened, for the terminal and the local page; the local page's own state.
    events: EventLog = field(default_factory=EventLog)
    page: PageState = field(default_factory=PageState, repr=False)
    _op_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        # What happened is also said in the window the PIN was typed in: a Windows build
        # has no console, and a child at the PC does not look for a web page.
        self.events.listeners.append(self._tell_window)

    def _tell_window(self, event: Event) -> None:
        # Looked up at each event: the prompt is chosen lazily (the terminal has no tell).
        say_in_window(event, getattr(self.pin_prompt, "tell", None))

    @classmethod
    def build(cls, origins: Iterable[str], **kwargs: Any) -> BridgeConfig:
        return cls(allowed_origins=frozenset(normalize_origin(o) for o in origins), **kwargs)

    def status(self) -> PcscStatus:
        return (self.status_fn or (lambda: pcsc_status(self.reader)))()

    def new_transport(self) -> Any:
        if self.transport_factory is not None:
            return self.transport_factory()
        return PcscTransport(self.reader)

    def prompt(self) -> PinPrompt:
        if self.pin_prompt is None:
            self.pin_prompt = default_prompt()
        return self.pin_prompt


def run_authentication(
    transport: Any,
    prompt: PinPrompt,
    site: Site | str,
    origin: str,
    challenge: str,
    version: str,
    events: EventLog | None = None,
) -> dict[str, str]:
    """Card work for one sign-in; shared by the HTTP API and the pairing flow.

    With `events`, the person is told what happened (PIN accepted, wrong PIN and the
    tries left, any other card error) on the terminal and the bridge's local page.
    """

    def ask(tries: int, last: bool) -> str | None:
        if events is not None:
            events.waiting_for_pin(site)
        return prompt.ask(site, tries, last)

    try:
        card = JpkiCard(transport)
        result = card.authenticate(
            message_digest(origin, challenge),
            ask,
            on_pin_accepted=events.pin_accepted if events is not None else None,
        )
    except CardError as exc:
        if events is not None:
            events.failed(exc)
        raise
    finally:
        close = getattr(transport, "close", None)
        if close is not None:
            close()
    return build_token(result.certificate, result.signature, version)


class _Handler(BaseHTTPRequestHandler):
    server: BridgeServer
    server_version = f"mynagate-card-bridge/{__version__}"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    # -- helpers ---------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        # Never the body; the path and status are enough to debug.
        log.info("%s %s", self.address_string(), format % args)

    @property
    def config(self) -> BridgeConfig:
        return self.server.config

    def _origin(self) -> str | None:
        raw = self.headers.get("Origin")
        if raw is None:
            return None
        try:
            return normalize_origin(raw)
        except ValueError:
            return "invalid"

    def _origin_allowed(self, origin: str | None) -> bool:
        return origin is not None and origin in self.config.allowed_origins

    def _host_ok(self) -> bool:
        # DNS rebinding: evil.example resolving to 127.0.0.1 would send Host: evil.example.
        host = (self.headers.get("Host") or "").lower()
        port = self.server.server_address[1]
        return host in {f"127.0.0.1:{port}", f"localhost:{port}", "127.0.0.1", "localhost"}

    def _send_json(
        self,
        status: int,
        body: dict[str, Any],
        origin: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self._cors(origin)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _cors(self, origin: str | None) -> None:
        self.send_header("Vary", "Origin")
        if self._origin_allowed(origin):
            assert origin is not None
            self.send_header("Access-Control-Allow-Origin", origin)

    def _error(
        self, status: int, code: str, description: str, origin: str | None = None, **extra: Any
    ) -> None:
        self._send_json(status, {"error": code, "error_description": description, **extra}, origin)

    # -- methods ---------------------------------------------------------------------
    def do_OPTIONS(self) -> None:  # noqa: N802 - stdlib naming
        origin = self._origin()
        if not self._host_ok() or not self._origin_allowed(origin):
            self._error(403, "forbidden_origin", "origin not allowed")
            return
        assert origin is not None
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", origin)
        self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Vary", "Origin")
        if (self.headers.get("Access-Control-Request-Private-Network") or "").lower() == "true":
            # Chrome's Private Network Access preflight for public page -> loopback.
            self.send_header("Access-Control-Allow-Private-Network", "true")
        self.send_header("Content-Length", "0")
        self.end_headers()

    # -- the local page (card_bridge.local_page) ---------------------------------------
    def _own_origin(self) -> str:
        return f"http://{(self.headers.get('Host') or '').lower()}"

    def _send_page(self, reply: Reply) -> None:
        data = reply.body.encode("utf-8")
        self.send_response(reply.status)
        if reply.location:
            self.send_header("Location", reply.location)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in PAGE_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _refuse_page(self, why: str) -> None:
        log.warning("local page refused: %s (Origin %r)", why, self.headers.get("Origin"))
        self._send_page(Reply(403, local_page.refusal_page(why)))

    def _local_get(self) -> None:
        why = local_page.refusal_of_get(self.headers, self._own_origin())
        if why is not None:
            self._refuse_page(why)
            return
        self._send_page(Reply(200, local_page.home(self.config)))

    def _local_post(self, path: str) -> None:
        if not self._host_ok():
            self._drain()
            self._refuse_page("use http://127.0.0.1")
            return
        why = local_page.refusal_of_post(self.headers, self._own_origin())
        length = self.headers.get("Content-Length") or ""
        if why is None and not (length.isdigit() and int(length) <= MAX_FORM):
            why = "the form is too large or has no length"
        if why is not None:
            self._drain()
            self._refuse_page(why)
            return
        fields = local_page.parse_form(self.rfile.read(int(length)), self.config)
        if fields is None:
            self._refuse_page("the form is old or not from this page: reload it")
            return
        if path == "/pair":
            self._send_page(local_page.submit_code(self.config, fields))
        else:
            self._send_page(local_page.confirm(self.config, fields, self.config.new_transport))

    def do_GET(self) -> None:  # noqa: N802
        origin = self._origin()
        if not self._host_ok():
            self._error(403, "forbidden_host", "use http://127.0.0.1")
            return
        if urlsplit(self.path).path == "/":
            self._local_get()
            return
        if origin is not None and not self._origin_allowed(origin):
            self._error(403, "forbidden_origin", "origin not allowed")
            return
        if urlsplit(self.path).path != "/v1/status":
            self._error(404, "not_found", "unknown endpoint", origin)
            return
        st = self.config.status()
        body = {
            "version": self.config.version,
            "reader": st.reader,
            "card": st.card,
            "pcsc": st.pcsc,
            "readers": st.readers,
            "busy": self.config._op_lock.locked(),
        }
        self._send_json(200, body, origin)

    def do_POST(self) -> None:  # noqa: N802
        if urlsplit(self.path).path in ("/pair", "/pair/confirm"):
            self._local_post(urlsplit(self.path).path)
            return
        # Each step sends its own refusal and returns None; the card is touched last.
        origin = self._admitted_origin()
        if origin is None:
            return
        asked = self._read_request(origin)
        if asked is None:
            return
        self._authenticate(origin, *asked)

    def _admitted_origin(self) -> str | None:
        """Path, Host, Origin and Content-Type checks, before any of the body is read."""
        origin = self._origin()
        if urlsplit(self.path).path != "/v1/authenticate":
            self._drain()
            self._error(
                404,
                "not_found",
                "unknown endpoint",
                origin if self._origin_allowed(origin) else None,
            )
            return None
        if not self._host_ok():
            self._drain()
            self._error(403, "forbidden_host", "use http://127.0.0.1")
            return None
        if not self._origin_allowed(origin):
            self._drain()
            self._error(403, "forbidden_origin", "origin not allowed")
            return None
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            self._drain()
            self._error(415, "invalid_request", "Content-Type must be application/json", origin)
            return None
        assert origin is not None  # _origin_allowed refuses a missing Origin
        return origin

    def _read_request(self, origin: str) -> tuple[str, str] | None:
        """Read the bounded JSON body; return its challenge and its app's name ("" when it
        has none fit to show) if its origin is the caller's.

        Other members are ignored, not refused: a newer page may send what this bridge does
        not know (as ``app`` to an older bridge), and nothing but the origin and the
        challenge is signed."""
        length_raw = self.headers.get("Content-Length")
        if length_raw is None or not length_raw.isdigit():
            self.close_connection = True
            self._error(411, "invalid_request", "Content-Length required", origin)
            return None
        length = int(length_raw)
        if length > MAX_BODY:
            self.close_connection = True  # do not read a body we refuse
            self._error(413, "invalid_request", f"body larger than {MAX_BODY} bytes", origin)
            return None
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._error(400, "invalid_request", "body is not JSON", origin)
            return None
        if not isinstance(body, dict):
            self._error(400, "invalid_request", "body must be a JSON object", origin)
            return None
        challenge, body_origin = body.get("challenge"), body.get("origin")
        if not isinstance(body_origin, str):
            self._error(400, "invalid_request", "origin missing", origin)
            return None
        try:
            body_origin_n = normalize_origin(body_origin)
        except ValueError:
            body_origin_n = None
        if body_origin_n != origin:
            # The origin signed into the token must be the page actually calling.
            self._error(403, "origin_mismatch", "origin does not match the Origin header", origin)
            return None
        if not is_valid_challenge(challenge):
            self._error(
                400, "invalid_request", "challenge must be 43-512 base64url characters", origin
            )
            return None
        assert isinstance(challenge, str)
        # Display only: what the page says it is. Not signed, never checked against
        # anything; shown before the origin it came from (card_bridge.origins.Site).
        return challenge, clean_app_name(body.get("app"))

    def _authenticate(self, origin: str, challenge: str, app: str) -> None:
        """One card operation at a time; any failure is a JSON error, never a traceback."""
        if not self.config._op_lock.acquire(blocking=False):
            self._error(409, "reader_busy", "another sign-in is in progress", origin)
            return
        # The lock is released before the answer goes out: a page that retries at once
        # (after a wrong PIN) must not find the reader still "busy".
        try:
            status, body = 200, run_authentication(
                self.config.new_transport(),
                self.config.prompt(),
                Site(urlsplit(origin).netloc, app),
                origin,
                challenge,
                self.config.version,
                self.config.events,
            )
            # The provider checks the token next; the bridge can only say it handed it over.
            self.config.events.signed(Site(origin, app))
        except CardError as exc:
            log.info("authenticate failed: %s", exc.code)
            status, body = exc.http_status, exc.to_dict()
        except Exception:  # never leak a traceback to the page; log it locally
            log.exception("authenticate crashed")
            status, body = 500, CardFailure().to_dict()
        finally:
            self.config._op_lock.release()
        self._send_json(status, body, origin)

    def _drain(self) -> None:
        # Keep-alive needs the unread body consumed; refuse to read big ones.
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= MAX_BODY:
            self.rfile.read(int(length))
        else:
            self.close_connection = True


class BridgeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, config: BridgeConfig, port: int = DEFAULT_PORT) -> None:
        self.config = config
        # 127.0.0.1 only, never 0.0.0.0: other machines on the school network must not
        # be able to ask this PC's card for a signature.
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def make_server(config: BridgeConfig, port: int = DEFAULT_PORT) -> BridgeServer:
    return BridgeServer(config, port)
