"""Serving the demo: the provider and the demo relying parties, each on its own port in a
thread of this process (werkzeug's threaded server), stopped together.

Sockets are bound *before* the apps exist: with port 0 (tests) the port the system picked
decides the issuer and the redirect URIs, which the apps and the seed need.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from idp.demo.seed import DEMO_PROVIDER_PORT, DEMO_RPS, DemoRP, demo_settings, seed_demo

LOG_FILE = "demo.log"
# Written once the first banner (with its once-only instructions) has been printed.
FIRST_RUN_STAMP = "demo-first-run-done"


@contextmanager
def demo_logging(state_dir: str | Path) -> Iterator[Path]:
    """Send every log line (the provider's JSON events, werkzeug's request lines) to
    ``<state_dir>/demo.log`` while the demo runs, so the terminal keeps the banner; errors
    also reach the terminal, in one short line.

    A root handler installed here is kept by the app's ``configure_logging`` (it leaves
    foreign handlers alone), and werkzeug adds no handler of its own when the root has one.
    """
    from idp.app import json_formatter

    path = Path(state_dir) / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(json_formatter())
    to_terminal = logging.StreamHandler()
    to_terminal.setLevel(logging.ERROR)
    to_terminal.setFormatter(logging.Formatter(
        f"demo: %(levelname)s %(name)s: %(message)s (details: {path})"))
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = [to_file, to_terminal]
    root.setLevel(logging.INFO)
    try:
        yield path
    finally:
        root.handlers, root.level = saved_handlers, saved_level
        to_file.close()


def is_first_run(state_dir: str | Path) -> bool:
    return not (Path(state_dir) / FIRST_RUN_STAMP).exists()


def remember_first_run(state_dir: str | Path) -> None:
    """Later banners leave out what one does once (``make bridge``, the TOTP key)."""
    stamp = Path(state_dir) / FIRST_RUN_STAMP
    if not stamp.exists():
        stamp.write_text("The first `make run` banner was shown; delete this file to see "
                         "its first-run instructions again.\n", encoding="utf-8")


class LateApp:
    """A WSGI app whose target is set after its socket is bound."""

    def __init__(self) -> None:
        self.target: Callable | None = None

    def __call__(self, environ, start_response):
        if self.target is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain"),
                                                       ("Retry-After", "1")])
            return [b"starting\n"]
        return self.target(environ, start_response)


class ServedApp:
    """One bound server; ``start()`` serves it in a daemon thread until ``stop()``."""

    def __init__(self, host: str, port: int) -> None:
        self.app = LateApp()
        self.server: BaseWSGIServer = make_server(host, port, self.app, threaded=True)
        self.host = host
        self.port = self.server.server_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, target: Callable) -> ServedApp:
        self.app.target = target
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name=f"serve-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
        self.server.server_close()


@dataclass
class DemoServers:
    """What :func:`serve_demo` started: the provider app, the RPs and the seed's result."""

    provider: ServedApp
    provider_app: Any
    rps: dict[str, tuple[DemoRP, ServedApp]]
    seed: dict[str, Any]
    state_dir: Path
    card: dict | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def issuer(self) -> str:
        return self.seed["issuer"]

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for _rp, served in self.rps.values():
            served.stop()
        self.provider.stop()
        self.provider_app.extensions["mynagate"].db.dispose()


def serve_demo(*, state_dir: str | Path = "var", host: str = "127.0.0.1",
               provider_port: int = DEMO_PROVIDER_PORT, rps: Sequence[DemoRP] = DEMO_RPS,
               overrides: Mapping[str, Any] | None = None, migrate: bool = True) -> DemoServers:
    """Migrate, seed and serve the provider and the demo RPs; returns once all listen.

    Ports may be 0 (the system picks; tests do this). ``overrides`` are settings that win
    over the demo's defaults (tests pass their database and store).
    """
    from idp.app import create_app
    from idp.demo import setup_demo_card
    from idp.store.migrate import upgrade_database

    bound: list[ServedApp] = []
    try:
        provider = ServedApp(host, provider_port)
        bound.append(provider)
        served_rps: dict[str, tuple[DemoRP, ServedApp]] = {}
        for rp in rps:
            served = ServedApp(host, rp.port)
            bound.append(served)
            served_rps[rp.key] = (replace(rp, port=served.port), served)
        # The issuer is the provider's own address: http on loopback, development only.
        settings = demo_settings(state_dir, issuer=f"http://127.0.0.1:{provider.port}",
                                 overrides=overrides)
        if migrate:
            upgrade_database(settings.database_url)
        card = setup_demo_card(settings)
        provider_app = create_app(settings)
        provider_app.extensions["mynagate"].keys.refresh()  # signing keys ready before serving
        seed = seed_demo(provider_app.extensions["mynagate"],
                         rps=[rp for rp, _ in served_rps.values()], state_dir=state_dir)
    except BaseException:
        for served in bound:
            served.stop()
        raise

    from idp.demo.rp import create_demo_rp

    provider.start(provider_app)
    for key, (rp, served) in served_rps.items():
        creds = seed["clients"][key]
        served.start(create_demo_rp(rp.name, settings.issuer, creds["client_id"],
                                    creds["client_secret"], rp.redirect_uri, rp.port))
    return DemoServers(provider=provider, provider_app=provider_app, rps=served_rps, seed=seed,
                       state_dir=Path(state_dir), card=card)


def describe(servers: DemoServers, *, log_path: Path | None = None,
             first_run: bool | None = None) -> str:
    """What to open and how to sign in, for the terminal: one block, printed last. The
    once-only instructions appear on the first run (or when the accounts were just made)."""
    from idp.demo import describe_demo_card

    seed = servers.seed
    if first_run is None:
        first_run = is_first_run(servers.state_dir)
    first_run = first_run or bool(seed["student"]["password"] or seed["admin"]["password"])
    lines = [
        "",
        "Mynagate demo is running / マイナゲートのデモが動いています",
        f"  provider (OpenID Provider): {servers.issuer}/",
        f"  discovery: {servers.issuer}/.well-known/openid-configuration",
        "",
        "Open one of the demo apps and press 「マイナゲートでサインイン」:",
    ]
    for rp, _served in servers.rps.values():
        lines.append(f"  {rp.name}: {rp.origin}/")
    lines += _sign_in_lines(seed, first_run)
    if servers.card is not None:
        lines += describe_demo_card(servers.card, first_run=first_run).splitlines()
    if first_run:
        lines += [
            "",
            "The two apps are on different hosts (127.0.0.1 and localhost), so they receive",
            "different `sub` values for the same student (pairwise subjects).",
        ]
    if log_path is not None:
        lines.append("")
        lines.append(f"Log lines (requests, audit events) go to {log_path}.")
    lines += ["Press Ctrl-C to stop.", ""]
    return "\n".join(lines)


def _sign_in_lines(seed: dict[str, Any], first_run: bool) -> list[str]:
    student, admin = seed["student"], seed["admin"]
    lines = [
        "",
        "Sign in with / サインインに使うもの:",
        f"  学校 school:   {seed['school']['name']} ({seed['school']['code']})",
        f"  ID login:      {student['login']}",
    ]
    if student["password"]:
        lines.append(f"  パスワード password: {student['password']}")
        lines.append("  (shown only now; it is stored only as an Argon2id hash)")
    else:
        lines.append("  パスワード password: shown when the demo first ran; to set a new one:")
        lines.append("      .venv/bin/idp demo reset-password")
    reset_admin = ("(shown when the demo first ran; "
                   ".venv/bin/idp demo reset-password --login demo-admin)")
    lines += [
        "",
        f"Admin pages / 管理画面: {seed['issuer']}/admin/",
        f"  school {seed['school']['code']}, ID {admin['login']}, password "
        + (admin["password"] or reset_admin),
    ]
    if admin.get("enrolment_code") or first_run:
        lines.append("  TOTP enrolment code / 登録コード: "
                     + (admin.get("enrolment_code") or reset_admin))
    if admin.get("enrolment_code"):
        lines += ["  The first admin sign-in asks for that code, then shows a TOTP key: add "
                  "it to an", "  authenticator app."]
    lines.append("")
    return lines
