"""Serving the demo: the provider and the demo relying parties, each on its own port in a
thread of this process (werkzeug's threaded server), stopped together.

Sockets are bound *before* the apps exist: with port 0 (tests) the port the system picked
decides the issuer and the redirect URIs, which the apps and the seed need.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from idp.demo.seed import DEMO_PROVIDER_PORT, DEMO_RPS, DemoRP, demo_settings, seed_demo


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
        self.provider_app.extensions["mynagate"].db.engine.dispose()


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
        setup_demo_card(settings)
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
    return DemoServers(provider=provider, provider_app=provider_app, rps=served_rps, seed=seed)


def describe(servers: DemoServers) -> str:
    """What to open and how to sign in, for the terminal."""
    seed = servers.seed
    student = seed["student"]
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
    lines += [
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
    admin = seed["admin"]
    lines += [
        "",
        f"Admin pages / 管理画面: {servers.issuer}/admin/",
        f"  school {seed['school']['code']}, ID {admin['login']}, password "
        + (admin["password"] or "(shown when the demo first ran; "
                             ".venv/bin/idp demo reset-password --login demo-admin)"),
        "  TOTP enrolment code / 登録コード: "
        + (admin.get("enrolment_code") or "(shown when the demo first ran; "
                                          ".venv/bin/idp demo reset-password --login demo-admin)"),
        "  The first admin sign-in asks for that code, then shows a TOTP key: add it to an",
        "  authenticator app.",
    ]
    lines += [
        "",
        "The two apps are on different hosts (127.0.0.1 and localhost), so they receive",
        "different `sub` values for the same student (pairwise subjects).",
        "Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)
