"""``idp school promote`` (the year-end promotion) and ``idp school lifecycle run`` (the
graduates' deactivation, cron-able). The command line acts as a platform admin."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from idp.cli import Ctx, fail, pass_ctx

CLI_ACTOR = "cli"


def register(cli: click.Group) -> None:
    school = cli.commands["school"]
    assert isinstance(school, click.Group)
    school.add_command(promote)
    school.add_command(lifecycle)
    school.add_command(year_settings)


def _actor():
    from idp.accounts.roles import PLATFORM_ADMIN, Actor

    return Actor(CLI_ACTOR, PLATFORM_ADMIN, "")


def _print_plan(view: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(view, ensure_ascii=False, indent=2))
        return
    s = view["summary"]
    click.echo(f"school {view['school_code']} (top grade {view['top_grade']}): "
               f"{s['promote']} to promote, {s['graduate']} to graduate, "
               f"{s['skipped']} skipped, {s['errors']} error(s)")
    for p in view["promote"]:
        kept = "" if p["class_from_roster"] else " (class kept: not in the roster)"
        click.echo(f"  promote  {p['login_id']}: grade {p['grade_from']} -> {p['grade_to']}, "
                   f"class {p['class_from'] or '-'} -> {p['class_to'] or '-'}{kept}")
    for g in view["graduate"]:
        click.echo(f"  graduate {g['login_id']}: grade {g['grade']} (top grade)")
    for p in view["skipped"] + view["errors"]:
        where = f" line {p['line']}" if p["line"] else ""
        click.echo(f"  cannot   {p['login_id'] or '-'}{where}: {p['code']}: {p['detail']}")


@click.command("promote")
@click.option("--school", "school_code", required=True, help="School code")
@click.option("--roster", "roster_file", type=click.File("rb"), default=None,
              help="Class roster CSV (login_id,grade,class or Mynagate's roster file)")
@click.option("--dry-run", is_flag=True, help="Only show what would change")
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
@pass_ctx
def promote(ctx: Ctx, school_code: str, roster_file, dry_run: bool, as_json: bool) -> None:
    """Move every pupil up one grade (the top grade graduates), in one transaction."""
    from idp.admin import school_year
    from idp.admin.roster import RosterFileError
    from idp.store.models import School

    roster = roster_file.read() if roster_file is not None else None
    with ctx.services.db.session() as db:
        school = db.scalar(select(School).where(School.code == school_code[:64]))
        if school is None:
            fail(f"no school {school_code}")
        try:
            plan, assignments = school_year.preview(db, _actor(), school, roster)
        except RosterFileError as exc:
            fail(f"{exc.code}: {exc}")
        _print_plan(school_year.plan_view(plan), as_json)
        if not plan.valid:
            fail("the roster has errors: nothing was changed")
        if dry_run:
            click.echo("dry run: nothing was changed", err=True)
            return
        try:
            applied = school_year.apply(db, _actor(), school, plan.token, assignments)
        except school_year.PromotionError as exc:
            fail(f"{exc.code}: {exc}")
    click.echo(f"applied: batch {applied.batch_id}", err=True)


@click.group("lifecycle")
def lifecycle() -> None:
    """Graduates' accounts after the grace period."""


@lifecycle.command("run")
@click.option("--school", "school_code", default=None, help="Only this school")
@click.option("--dry-run", is_flag=True, help="Only list who would be deactivated")
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
@pass_ctx
def lifecycle_run(ctx: Ctx, school_code: str | None, dry_run: bool, as_json: bool) -> None:
    """Deactivate graduates whose grace period is over (idempotent; run it daily)."""
    from idp.accounts import lifecycle as account_lifecycle
    from idp.signin.sessions import end_account_sessions
    from idp.store.models import School, iso_utc

    svc = ctx.services
    with svc.db.session() as db:
        school_id = None
        if school_code is not None:
            school_id = db.scalar(select(School.id).where(School.code == school_code[:64]))
            if school_id is None:
                fail(f"no school {school_code}")
        done = account_lifecycle.run(
            db, end_sessions=lambda account_id: end_account_sessions(svc.store, account_id),
            school_id=school_id, dry_run=dry_run, actor=CLI_ACTOR)
    rows = [{"school_code": a.school_code, "login_id": a.login_id,
             "graduated_at": iso_utc(a.graduated_at), "access_ended": iso_utc(a.access_ended),
             "removed": a.removed} for a in done]
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "deactivated": rows}, ensure_ascii=False))
        return
    verb = "would deactivate" if dry_run else "deactivated"
    for row in rows:
        click.echo(f"{verb} {row['school_code']}/{row['login_id']} (graduated "
                   f"{row['graduated_at']}, access ended {row['access_ended']}) {row['removed']}")
    click.echo(f"{verb} {len(rows)} graduate(s)")


@click.command("year-settings")
@click.option("--school", "school_code", required=True, help="The school's code")
@click.option("--top-grade", type=int, default=None, help="Pupils in this grade graduate")
@click.option("--grace-days", type=int, default=None,
              help="Days graduates keep the apps that allow graduates")
@pass_ctx
def year_settings(ctx: Ctx, school_code: str, top_grade: int | None,
                  grace_days: int | None) -> None:
    """Show or change a school's top grade and graduates' grace period."""
    from idp.admin import school_year
    from idp.store.models import School

    with ctx.services.db.session() as db:
        school = db.scalar(select(School).where(School.code == school_code[:64]))
        if school is None:
            fail(f"no school {school_code}")
        if top_grade is not None or grace_days is not None:
            try:
                school_year.set_year_settings(db, _actor(), school, top_grade=top_grade,
                                              grace_days=grace_days)
            except school_year.PromotionError as exc:
                fail(f"{exc.code}: {exc}")
        click.echo(json.dumps(school_year.year_settings_view(school), ensure_ascii=False))
