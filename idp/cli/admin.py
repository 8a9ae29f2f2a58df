"""``idp admin ...``: the few admin tasks that need a terminal (first platform admin's API
token, TOTP reset, the audit purge a cron job runs)."""

from __future__ import annotations

import json

import click
from sqlalchemy import select


def register(cli: click.Group) -> None:
    if "admin" in cli.commands:
        return
    from idp.cli import fail, pass_ctx

    @cli.group("admin")
    def admin() -> None:
        """Administration tasks."""

    @admin.command("purge-audit")
    @pass_ctx
    def purge_audit(ctx) -> None:
        """Delete audit events older than the retention setting (run it daily)."""
        from idp.admin import audit_log

        with ctx.services.db.session() as db:
            days = audit_log.retention_days(db)
            deleted = audit_log.purge(db, actor="cli")
        click.echo(json.dumps({"deleted": deleted, "retention_days": days}))

    @admin.command("reset-totp")
    @click.option("--school", "school_code", required=True)
    @click.option("--login", "login_id", required=True)
    @pass_ctx
    def reset_totp(ctx, school_code: str, login_id: str) -> None:
        """Forget an account's TOTP (an admin enrols again at the next sign-in; a guardian
        signs in with the password alone until they turn it on again)."""
        from idp.audit import audit
        from idp.signin import totp
        from idp.store.models import Account, School

        with ctx.services.db.session() as db:
            account = db.scalar(select(Account).join(School).where(
                School.code == school_code, Account.login_id == login_id))
            if account is None:
                fail(f"no account {login_id} in school {school_code}")
            totp.reset(db, account.id)
            audit(db, "admin.totp_reset", actor="cli", account_id=account.id)
        click.echo("TOTP enrolment removed (idp admin enrol-code gives the code to enrol again)")

    @admin.command("enrol-code")
    @click.option("--school", "school_code", required=True)
    @click.option("--login", "login_id", required=True)
    @pass_ctx
    def enrol_code(ctx, school_code: str, login_id: str) -> None:
        """Print a one-time TOTP enrolment code for a staff account (valid 72 hours). Hand it
        over in person: with the password alone, the TOTP page shows no secret."""
        from idp.admin import accounts, credentials
        from idp.store.models import Account, School

        with ctx.services.db.session() as db:
            account = db.scalar(select(Account).join(School).where(
                School.code == school_code, Account.login_id == login_id))
            if not credentials.is_staff_account(account):
                fail(f"{login_id} in {school_code} is not an active staff account")
            code = accounts.issue_enrolment_code(db, account, actor_id="cli")
        click.echo(code)

    @admin.command("api-token")
    @click.option("--school", "school_code", required=True)
    @click.option("--login", "login_id", required=True)
    @click.option("--days", default=7, show_default=True, type=click.IntRange(1, 90))
    @pass_ctx
    def api_token(ctx, school_code: str, login_id: str, days: int) -> None:
        """Issue an admin API token for an admin account (printed once)."""
        from idp.admin import credentials
        from idp.audit import audit
        from idp.store.models import Account, School

        with ctx.services.db.session() as db:
            account = db.scalar(select(Account).join(School).where(
                School.code == school_code, Account.login_id == login_id))
            if not credentials.is_admin_account(account):
                fail(f"{login_id} in {school_code} is not an active admin account")
            row, value = credentials.issue_api_token(
                db, actor=credentials.actor_of(account), label="cli", days=days)
            audit(db, "admin.api_token_issued", actor="cli", account_id=account.id,
                  token_id=row.id)
        click.echo(value)
