"""``idp roster ...``: a roster (Mynagate's CSV or a OneRoster 1.2 bundle) imported from a
terminal, with its first-password sheets written to a file, and a OneRoster bundle exported
for one app. The same services as the admin page and the API; the actor is ``cli``."""

from __future__ import annotations

import json
from pathlib import Path

import click

CLI_ACTOR_ID = "cli"


def register(cli: click.Group) -> None:
    if "roster" in cli.commands:
        return
    from idp.cli import fail, pass_ctx

    @cli.group("roster")
    def roster() -> None:
        """Roster import and export."""

    @roster.command("import")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--oneroster", is_flag=True, help="The file is a OneRoster 1.2 CSV zip.")
    @click.option("--deactivate-missing", is_flag=True,
                  help="Deactivate the students of the file's schools who are not in it.")
    @click.option("--dry-run", is_flag=True, help="Show the plan; write nothing.")
    @click.option("--sheets", type=click.Path(dir_okay=False, path_type=Path),
                  help="Where to write the first-password sheets (PDF) of new accounts.")
    @pass_ctx
    def roster_import(ctx, path: Path, oneroster: bool, deactivate_missing: bool,
                      dry_run: bool, sheets: Path | None) -> None:
        """Preview, then import a roster in one transaction (all or nothing)."""
        run_import(ctx.services, path.read_bytes(), "oneroster" if oneroster else "csv",
                   deactivate_missing=deactivate_missing, dry_run=dry_run, sheets=sheets)

    @roster.command("slip")
    @click.option("--school", "school_code", required=True)
    @click.option("--login", "login_id", required=True)
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                  required=True, help="Where to write the slip (PDF).")
    @pass_ctx
    def roster_slip(ctx, school_code: str, login_id: str, output: Path) -> None:
        """Print one student's or teacher's slip again, with a NEW first password (the old
        one stops working; the next sign-in asks for a new one)."""
        run_slip(ctx.services, school_code, login_id, output)

    @roster.command("export")
    @click.option("--oneroster", is_flag=True, required=True,
                  help="OneRoster 1.2 CSV (the one export format).")
    @click.option("--client", "client_id", required=True, help="The app's client_id.")
    @click.option("--school", "school_code", required=True)
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                  required=True)
    @pass_ctx
    def roster_export(ctx, oneroster: bool, client_id: str, school_code: str,
                      output: Path) -> None:
        """Write one school's OneRoster bundle for one app (its pairwise subs)."""
        from idp.accounts.roles import PLATFORM_ADMIN, Actor
        from idp.admin.accounts import AdminInputError, NotFound
        from idp.admin.oneroster_export import export_bundle

        svc = ctx.services
        try:
            with svc.db.session() as db:
                export = export_bundle(db, Actor(CLI_ACTOR_ID, PLATFORM_ADMIN, ""),
                                       client_id=client_id, school_code=school_code,
                                       pairwise_secret=svc.settings.pairwise_secret)
        except (AdminInputError, NotFound) as exc:
            fail(str(exc))
        output.write_bytes(export.data)
        click.echo(json.dumps({"users": export.users, "file": str(output)}))


def run_import(svc, data: bytes, file_format: str, *, deactivate_missing: bool,
               dry_run: bool, sheets: Path | None) -> None:
    from idp.accounts.roles import PLATFORM_ADMIN, Actor
    from idp.admin import roster_service
    from idp.admin.roster import RosterFileError
    from idp.admin.sheets import first_password_pdf
    from idp.cli import fail

    actor = Actor(CLI_ACTOR_ID, PLATFORM_ADMIN, "")
    try:
        with svc.db.session() as db:
            plan = roster_service.preview(db, actor, data, file_format=file_format,
                                          deactivate_missing=deactivate_missing)
        if dry_run or not plan.valid:
            click.echo(json.dumps(roster_service.plan_view(plan), ensure_ascii=False, indent=1))
            if not plan.valid:
                fail(f"{len(plan.errors)} error(s): nothing imported")
            return
        if plan.creates and sheets is None:
            fail(f"{len(plan.creates)} new account(s): give --sheets FILE.pdf to keep "
                 "their first passwords")
        with svc.db.session() as db:
            result = roster_service.import_roster(svc, db, actor, data, file_format=file_format,
                                                  deactivate_missing=deactivate_missing)
    except RosterFileError as exc:
        fail(f"{exc.code}: {exc}")
        return
    if not result.applied:
        fail("the roster changed meanwhile: nothing imported")
    if result.created and sheets is not None:
        sheets.write_bytes(first_password_pdf(result.created, issuer=svc.settings.issuer))
        roster_service.discard_sheet(svc, result.sheet_id or "")
    view = roster_service.plan_view(result.plan)
    view["applied"] = True
    click.echo(json.dumps(view, ensure_ascii=False, indent=1))


def run_slip(svc, school_code: str, login_id: str, output: Path) -> None:
    """A new first password for one account and its slip, written to ``output``."""
    from sqlalchemy import func, select

    from idp.admin import slips
    from idp.admin.accounts import AdminInputError
    from idp.admin.sheets import SheetFontMissing, first_password_pdf, fonts
    from idp.cli import fail
    from idp.store.models import Account, School

    try:
        fonts()
        with svc.db.session() as db:
            row = db.scalar(select(Account).join(School).where(
                School.code == school_code,
                func.lower(Account.login_id) == login_id.lower()))
            if row is None:
                fail(f"no account {login_id} in school {school_code}")
            entry = slips.reprint_slip(svc, db, row, actor_id=CLI_ACTOR_ID)
    except (AdminInputError, SheetFontMissing) as exc:
        fail(str(exc))
        return
    output.write_bytes(first_password_pdf([entry], issuer=svc.settings.issuer))
    click.echo(json.dumps({"login_id": entry["login_id"], "file": str(output)}))
