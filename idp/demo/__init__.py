"""The ``make run`` demo: the provider on the embedded default plus two demo relying parties.

``python -m idp.demo`` (what ``make run`` runs) migrates, seeds once and serves
http://127.0.0.1:5000 (provider), http://127.0.0.1:5001 and http://localhost:5002 (demo apps).
Tests use :func:`seed_demo` and :func:`serve_demo` with their own ports and database.

This package is imported by ``idp`` at every start (for :func:`register`), so it stays light:
the seed, servers and demo RP load only when used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from idp.settings import Settings

__all__ = ["DEMO_RPS", "DemoRP", "demo_settings", "register", "reset_demo_password",
           "seed_demo", "serve_demo", "setup_demo_card"]

_LAZY = {
    "DEMO_RPS": "idp.demo.seed", "DemoRP": "idp.demo.seed", "demo_settings": "idp.demo.seed",
    "seed_demo": "idp.demo.seed", "reset_demo_password": "idp.demo.seed",
    "serve_demo": "idp.demo.serve", "describe": "idp.demo.serve",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'idp.demo' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


DEMO_PKI_DIR = "demo-pki"
DEMO_CARD_PIN = "1234"


def setup_demo_card(settings: Settings, state_dir: str | Path | None = None) -> dict | None:
    """Give the demo a virtual MyNumber card: a JPKI *test* PKI and the provider trusting it.

    Called by :func:`idp.demo.serve.serve_demo` after the migrations and before the provider
    app is created, with the demo's development settings (changed in place). Mints the test
    PKI once under ``<state>/demo-pki`` (the state directory is the one holding the demo's
    keys), re-signs its CRL when it gets old, points the trust anchors and CRL revocation at
    it, and returns what the banner needs to say how to start the card simulator and the
    bridge. Does nothing outside development, or when the person configured their own trust anchors
    (``IDP_JPKI_TRUST_ANCHORS``). Returns what it set up (paths), or None.
    """
    if settings.env != "development" or settings.jpki_trust_anchors:
        return None
    from datetime import UTC, datetime, timedelta

    from idp.jpki.testing.pki_dir import load_test_pki, rewrite_crl, write_test_pki

    state = Path(state_dir) if state_dir else Path(settings.keys_dir).resolve().parent
    pki_dir = state / DEMO_PKI_DIR
    if not (pki_dir / "manifest.json").exists():
        write_test_pki(pki_dir, n_cards=2)
    pki = load_test_pki(pki_dir)
    next_update = datetime.fromisoformat(pki.manifest["crl"]["next_update"])
    if next_update - datetime.now(UTC) < timedelta(days=2):
        pki = rewrite_crl(pki_dir)  # a stale CRL fails closed: keep the demo's fresh
    settings.jpki_trust_anchors = [str(pki.root_path)]
    settings.jpki_revocation = "crl"
    settings.jpki_crl_sources = [str(pki.crl_path)]
    card = pki.manifest["cards"][0]
    info = {"pki_dir": str(pki_dir), "cert": str(pki_dir / card["cert_der"]),
            "key": str(pki_dir / card["key"]), "pin": DEMO_CARD_PIN,
            "origin": settings.issuer_origin}
    # Not printed here: the demo's banner (idp.demo.serve.describe) includes it, last.
    return info


def describe_demo_card(info: dict, *, first_run: bool = True) -> str:
    """How to sign in with the virtual card, for the terminal (the once-only steps only on
    the first run)."""
    lines = [
        "Demo MyNumber card / デモ用マイナンバーカード (TEST PKI, O=JPKI-TEST):",
        f"  test PKI: {info['pki_dir']} (trusted by this demo only, CRL revocation)",
    ]
    if first_run:
        lines.append("  First, once: sudo make bridge   (pyscard, pcscd and the vpcd virtual "
                     "reader)")
    lines += [
        "  In two more terminals:",
        f"    .venv/bin/card-bridge simulate --cert {info['cert']} \\",
        f"        --key {info['key']} --pin {info['pin']}",
        f"    .venv/bin/card-bridge serve --allow-origin {info['origin']}",
        f"  Then press 「マイナンバーカードでサインイン」; the PIN is {info['pin']}.",
    ]
    if first_run:
        lines.append("  The first time, the card is linked to demo-student with the ID and "
                     "password.")
    lines.append("")
    return "\n".join(lines)


def register(cli: Any) -> None:
    """Add ``idp demo seed|run|reset-password`` to the ``idp`` command line."""
    import click

    @cli.group()
    def demo() -> None:
        """The local demo (development settings under var/)."""

    @demo.command("run")
    @click.option("--state-dir", default="var", show_default=True,
                  help="Where the demo keeps its database, keys and secrets")
    def demo_run(state_dir: str) -> None:
        """Serve the provider on 127.0.0.1:5000 and the demo apps on 5001/5002."""
        from idp.demo.__main__ import run

        sys.exit(run(state_dir))

    @demo.command("seed")
    @click.option("--state-dir", default="var", show_default=True)
    def demo_seed(state_dir: str) -> None:
        """Migrate and create the demo school, student and apps (once); print JSON."""
        from idp.app import create_app
        from idp.demo.seed import demo_settings, seed_demo
        from idp.settings import SettingsError
        from idp.store.migrate import upgrade_database

        try:
            settings = demo_settings(state_dir)
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from exc
        upgrade_database(settings.database_url)
        app = create_app(settings)
        result = seed_demo(app.extensions["mynagate"], state_dir=state_dir)
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))

    @demo.command("reset-password")
    @click.option("--state-dir", default="var", show_default=True)
    @click.option("--login", default="demo-student", show_default=True,
                  help="demo-student or demo-admin")
    def demo_reset_password(state_dir: str, login: str) -> None:
        """Give a demo account a new generated password and print it."""
        from idp.app import create_app
        from idp.demo.seed import (
            DEMO_ADMIN_LOGIN,
            demo_enrolment_code,
            demo_settings,
            reset_demo_password,
        )
        from idp.settings import SettingsError

        try:
            app = create_app(demo_settings(state_dir))
            password = reset_demo_password(app.extensions["mynagate"], login)
            code = demo_enrolment_code(app.extensions["mynagate"]) \
                if login == DEMO_ADMIN_LOGIN else None
        except (SettingsError, LookupError) as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"{login} password / パスワード: {password}")
        if code:
            click.echo(f"{login} TOTP enrolment code / 登録コード: {code}")
