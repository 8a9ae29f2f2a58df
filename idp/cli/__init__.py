"""The ``idp`` command line: serve, migrate, and manage schools, accounts and clients.

Every command has ``--help``; bad arguments exit non-zero with one clear line.
"""

from __future__ import annotations

import json
import sys

import click
from sqlalchemy import select

from idp.clients.auth_methods import AUTH_METHODS, DEFAULT_METHOD
from idp.keys import ALGORITHMS as KEY_ALGORITHMS
from idp.settings import Settings, SettingsError
from idp.store.migrate import upgrade_database


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


class Ctx:
    def __init__(self) -> None:
        self._app = None

    @property
    def app(self):
        if self._app is None:
            from idp.app import create_app

            try:
                self._app = create_app(Settings.load())
            except SettingsError as exc:
                fail(str(exc))
        return self._app

    @property
    def services(self):
        return self.app.extensions["mynagate"]


pass_ctx = click.make_pass_decorator(Ctx, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Mynagate OpenID Connect provider."""


# ----------------------------------------------------------------------------- serve
@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@pass_ctx
def serve(ctx: Ctx, host: str, port: int) -> None:
    """Serve the provider (gunicorn when IDP_WORKERS > 1, else a threaded server)."""
    try:
        workers = Settings.load().workers
    except SettingsError as exc:
        fail(str(exc))
    if workers > 1:
        # Before the app (and so prometheus-client) is first imported: the value class is
        # chosen then. Every worker writes its own files; /metrics adds them up.
        metrics_dir = prepare_metrics_dir()
    settings = ctx.services.settings
    app = ctx.app
    check_signing_keys(ctx.services)
    from idp.ops.heap import freeze_again_later, freeze_what_is_held

    freeze_what_is_held()  # before the fork: see idp.ops.heap
    if settings.workers > 1:
        from gunicorn.app.base import BaseApplication

        from idp.metrics import mark_process_dead

        click.echo(f"Mynagate metrics of every worker in {metrics_dir}")

        class _App(BaseApplication):
            def load_config(self):
                self.cfg.set("bind", f"{host}:{port}")
                self.cfg.set("workers", settings.workers)
                self.cfg.set("threads", 4)
                # A dead worker's live gauges must not be summed with the living.
                self.cfg.set("child_exit", lambda _server, worker: mark_process_dead(worker.pid))
                self.cfg.set("post_fork", lambda _server, _worker: freeze_again_later())
                self.cfg.set("logger_class", json_gunicorn_logger())

            def load(self):
                return app

        _App().run()
        return
    from werkzeug.serving import run_simple

    click.echo(f"Mynagate serving {settings.issuer} on http://{host}:{port}")
    freeze_again_later()
    run_simple(host, port, app, threaded=True, use_reloader=False)


def json_gunicorn_logger():
    """gunicorn's logger with the app's JSON lines (gunicorn keeps handlers of its own)."""
    from gunicorn.glogging import Logger

    from idp.app import json_formatter

    class JsonLogger(Logger):
        def setup(self, cfg) -> None:
            super().setup(cfg)
            for handler in self.error_log.handlers + self.access_log.handlers:
                handler.setFormatter(json_formatter())

    return JsonLogger


def prepare_metrics_dir() -> str:
    """The directory of this run's per-worker metric files (prometheus-client's multiprocess
    mode): the operator's ``PROMETHEUS_MULTIPROC_DIR``, emptied of an earlier run's files,
    or a new temporary one removed at exit."""
    import atexit
    import os
    import shutil
    import tempfile
    from pathlib import Path

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # counters of a previous run would be summed in
            stale.unlink()
        return str(path)
    made = tempfile.mkdtemp(prefix="mynagate-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    master = os.getpid()
    # Only the process that made it removes it (a forked worker's exit must not).
    atexit.register(lambda: os.getpid() == master and shutil.rmtree(made, ignore_errors=True))
    return made


def check_signing_keys(services) -> None:
    """Refuse to start without a usable database schema and signing keys, saying why."""
    from sqlalchemy.exc import SQLAlchemyError

    from idp.keys import KeyFileMissing

    try:
        services.keys.refresh()
    except KeyFileMissing as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"cannot read the signing keys from the database ({type(exc).__name__}); "
             "is IDP_DATABASE_URL right, and has `idp db upgrade` run?")


# ----------------------------------------------------------------------------- keys
@cli.group()
def keys() -> None:
    """ID token signing keys: list, rotate, prune."""


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def keys_list(ctx: Ctx, as_json: bool) -> None:
    """Every key in the list: next (announced), active (signing), retired (still published
    until the retention ends)."""
    from idp.keys import describe, ensure_keys
    from idp.store.models import SigningKey

    settings = ctx.services.settings
    with ctx.services.db.session() as s:
        ensure_keys(s, settings.keys_dir)
        rows = [describe(row) for row in s.scalars(
            select(SigningKey).order_by(SigningKey.alg, SigningKey.created_at))]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['kid']}\t{row['alg']}\t{row['state']}\t"
                   f"created {row['created_at']}\tretired {row['retired_at'] or '-'}")


@keys.command("rotate")
@click.option("--alg", "algorithms", multiple=True, type=click.Choice(KEY_ALGORITHMS),
              help="Only this algorithm (repeatable); default both.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def keys_rotate(ctx: Ctx, algorithms: tuple[str, ...], as_json: bool) -> None:
    """Start signing with the announced key, retire the current one, announce a new one.
    Every worker picks the change up within 30 seconds."""
    from idp.audit import audit
    from idp.keys import describe, rotate

    settings = ctx.services.settings
    with ctx.services.db.session() as s:
        promoted = rotate(s, settings.keys_dir, algorithms or KEY_ALGORITHMS)
        rows = [describe(row) for row in promoted]
        audit(s, "keys.rotated", actor="cli", kids=[row["kid"] for row in rows])
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['alg']} now signs with {row['kid']}")


@keys.command("prune")
@pass_ctx
def keys_prune(ctx: Ctx) -> None:
    """Remove retired keys older than IDP_SIGNING_KEY_RETENTION from the list (and /jwks.json)."""
    from idp.audit import audit
    from idp.keys import prune

    with ctx.services.db.session() as s:
        removed = prune(s, ctx.services.settings.signing_key_retention)
        if removed:
            audit(s, "keys.pruned", actor="cli", kids=removed)
    click.echo(f"removed {len(removed)} retired key(s)")


# ----------------------------------------------------------------------------- db
@cli.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration (SQLite or PostgreSQL)."""
    try:
        settings = Settings.load()
    except SettingsError as exc:
        fail(str(exc))
    upgrade_database(settings.database_url)
    click.echo("database is up to date")


# ----------------------------------------------------------------------------- schools
@cli.group()
def school() -> None:
    """Schools."""


@school.command("create")
@click.option("--code", required=True, help="School code (unique)")
@click.option("--name", required=True)
@pass_ctx
def school_create(ctx: Ctx, code: str, name: str) -> None:
    """Create a school."""
    from idp.admin.accounts import AdminInputError, school_code_of
    from idp.audit import audit
    from idp.store.models import School

    try:  # the admin page's rule (idp.admin.accounts.SCHOOL_CODE_RE)
        code = school_code_of(code)
    except AdminInputError as exc:
        fail(f"--code: {exc}")
    if not code or len(code) > 64:
        fail("--code must be 1-64 characters")
    with ctx.services.db.session() as s:
        if s.scalar(select(School).where(School.code == code)):
            fail(f"school {code} already exists")
        row = School(code=code, name=name.strip())
        s.add(row)
        s.flush()
        audit(s, "school.created", actor="cli", school_id=row.id, code=code)
    click.echo(json.dumps({"id": row.id, "code": code, "name": name}, ensure_ascii=False))


# ----------------------------------------------------------------------------- accounts
@cli.group()
def account() -> None:
    """Accounts."""


@account.command("create")
@click.option("--school", "school_code", required=True, help="School code")
@click.option("--login", "login_id", required=True, help="Login id (unique in the school)")
@click.option("--name", "display_name", default="", help="Display name")
@click.option("--role", default="student", type=click.Choice(
    ["student", "teacher", "school_admin", "platform_admin"]))
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input")
@pass_ctx
def account_create(ctx: Ctx, school_code: str, login_id: str, display_name: str, role: str,
                   password_stdin: bool) -> None:
    """Create an account; with --password-stdin, set its password."""
    from idp.audit import audit
    from idp.signin.passwords import PasswordPolicyError, hash_password
    from idp.store.models import Account, School

    password_hash = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        try:
            password_hash = hash_password(password, login_id=login_id)
        except PasswordPolicyError as exc:
            fail(f"password refused: {exc}")
    login_id = login_id.strip()
    if not login_id or len(login_id) > 64:
        fail("--login must be 1-64 characters")
    with ctx.services.db.session() as s:
        school_row = s.scalar(select(School).where(School.code == school_code))
        if school_row is None:
            fail(f"no school with code {school_code}")
        exists = s.scalar(select(Account).where(Account.school_id == school_row.id,
                                                Account.login_id == login_id))
        if exists:
            fail(f"login id {login_id} already exists in school {school_code}")
        row = Account(school_id=school_row.id, login_id=login_id, display_name=display_name,
                      role=role, password_hash=password_hash)
        s.add(row)
        s.flush()
        audit(s, "account.created", actor="cli", account_id=row.id, school_id=school_row.id)
    click.echo(json.dumps({"id": row.id, "school": school_code, "login": login_id}))


# ----------------------------------------------------------------------------- clients
@cli.group()
def client() -> None:
    """Relying parties (OAuth clients)."""


@client.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True)
@click.option("--post-logout-redirect-uri", "post_logout", multiple=True)
@click.option("--sector-identifier-uri", default=None)
@click.option("--auth-method", default=DEFAULT_METHOD, type=click.Choice(AUTH_METHODS))
@click.option("--jwks-uri", default=None)
@click.option("--jwks-file", type=click.File("r"), default=None, help="A JWK set (JSON file)")
@click.option("--id-token-alg", default="RS256", type=click.Choice(KEY_ALGORITHMS))
@click.option("--scope", "scopes", multiple=True, help="Allowed scope (repeat); default all")
@click.option("--require-acr", default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
@pass_ctx
def client_create(ctx: Ctx, name, redirect_uris, post_logout, sector_identifier_uri,
                  auth_method, jwks_uri, jwks_file, id_token_alg, scopes, require_acr,
                  as_json) -> None:
    """Register a relying party; prints client_id and, once, client_secret."""
    from idp.clients.registry import ClientMetadataError, ClientSpec, register_client

    jwks = None
    if jwks_file is not None:
        try:
            jwks = json.load(jwks_file)
        except ValueError as exc:
            fail(f"--jwks-file is not JSON: {exc}")
    spec = ClientSpec(name=name, redirect_uris=list(redirect_uris),
                      post_logout_redirect_uris=list(post_logout),
                      sector_identifier_uri=sector_identifier_uri,
                      token_endpoint_auth_method=auth_method, jwks=jwks, jwks_uri=jwks_uri,
                      id_token_signed_response_alg=id_token_alg,
                      scopes=list(scopes) or None, required_acr=require_acr)
    try:
        row, secret = register_client(ctx.services, spec, actor="cli")
    except ClientMetadataError as exc:
        fail(f"{exc.code}: {exc}")
    out = {"client_id": row.client_id, "client_secret": secret, "sector": row.sector,
           "token_endpoint_auth_method": row.token_endpoint_auth_method,
           "redirect_uris": row.redirect_uris}
    if as_json:
        click.echo(json.dumps(out))
    else:
        for key, value in out.items():
            click.echo(f"{key}: {value}")


@client.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def client_list(ctx: Ctx, as_json: bool) -> None:
    """List relying parties."""
    from idp.store.models import Client

    with ctx.services.db.session() as s:
        rows = [{"client_id": c.client_id, "name": c.name, "sector": c.sector,
                 "enabled": c.enabled, "redirect_uris": c.redirect_uris}
                for c in s.scalars(select(Client).order_by(Client.created_at))]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
    else:
        for row in rows:
            click.echo(f"{row['client_id']}\t{row['name']}\t{row['sector']}")


@client.command("delete")
@click.argument("client_id")
@pass_ctx
def client_delete(ctx: Ctx, client_id: str) -> None:
    """Delete a relying party and everything issued to it."""
    from idp.audit import audit
    from idp.store.models import Client

    with ctx.services.db.session() as s:
        row = s.get(Client, client_id)
        if row is None:
            fail(f"no client {client_id}")
        s.delete(row)
        audit(s, "client.deleted", actor="cli", client_id=client_id)
    click.echo(f"deleted {client_id}")


def register_extra_commands() -> None:
    """The one list of command groups beyond the core ones above: cards and JPKI, admin
    tasks, the demo."""
    import importlib

    for name in ("idp.cli.card", "idp.cli.admin", "idp.cli.transfer", "idp.cli.school_year",
                 "idp.cli.guardian", "idp.cli.roster", "idp.demo"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(cli)


def main() -> None:
    register_extra_commands()
    cli(prog_name="idp")


if __name__ == "__main__":
    main()
