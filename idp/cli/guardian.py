"""``idp guardian ...``: link a guardian account to a pupil, end a link, list links, set the
school's guardian-consent age. Acts as the platform (``cli``), like the other commands."""

from __future__ import annotations

import json

import click
from sqlalchemy import select


def register(cli: click.Group) -> None:
    if "guardian" not in cli.commands:
        cli.add_command(guardian)





def _actor():
    from idp.accounts.roles import PLATFORM_ADMIN, Actor

    return Actor(account_id="cli", role=PLATFORM_ADMIN, school_id="")


def _account(db, school_code: str, login_id: str):
    from idp.cli import fail
    from idp.store.models import Account, School

    row = db.scalar(select(Account).join(School).where(School.code == school_code,
                                                       Account.login_id == login_id))
    if row is None:
        fail(f"no account {login_id} in school {school_code}")
    return row


@click.group()
def guardian() -> None:
    """Guardians: link them to pupils, end links, the school's consent age."""


@guardian.command("link")
@click.option("--school", "school_code", required=True, help="the pupil's school code")
@click.option("--guardian", "guardian_login", required=True, help="the guardian's login id")
@click.option("--child", "child_login", required=True, help="the pupil's login id")
@click.option("--guardian-school", default=None, help="the guardian's school, if another")
@click.pass_context
def link(click_ctx, school_code: str, guardian_login: str, child_login: str,
         guardian_school: str | None) -> None:
    """Let a guardian account see and act for a pupil."""
    from idp.accounts import guardians
    from idp.cli import Ctx, fail

    ctx = click_ctx.ensure_object(Ctx)
    with ctx.services.db.session() as db:
        adult = _account(db, guardian_school or school_code, guardian_login)
        child = _account(db, school_code, child_login)
        try:
            row = guardians.link(db, _actor(), adult, child)
        except guardians.GuardianError as exc:
            fail(str(exc))
        click.echo(json.dumps(guardians.link_view(guardians.LinkView(row, adult, child)),
                              ensure_ascii=False))


@guardian.command("unlink")
@click.option("--school", "school_code", required=True)
@click.option("--guardian", "guardian_login", required=True)
@click.option("--child", "child_login", required=True)
@click.option("--guardian-school", default=None)
@click.pass_context
def unlink(click_ctx, school_code: str, guardian_login: str, child_login: str,
           guardian_school: str | None) -> None:
    """End a link: the guardian no longer sees or acts for the pupil."""
    from idp.accounts import guardians
    from idp.cli import Ctx, fail
    from idp.store.models import GuardianLink

    ctx = click_ctx.ensure_object(Ctx)
    with ctx.services.db.session() as db:
        adult = _account(db, guardian_school or school_code, guardian_login)
        child = _account(db, school_code, child_login)
        row = db.scalar(select(GuardianLink).where(GuardianLink.guardian_id == adult.id,
                                                   GuardianLink.child_id == child.id))
        if row is None:
            fail("this guardian is not linked to this pupil")
        guardians.unlink(db, _actor(), row)
    click.echo("unlinked")


@guardian.command("list")
@click.option("--school", "school_code", required=True)
@click.pass_context
def list_links(click_ctx, school_code: str) -> None:
    """Every guardian link of the school's pupils, one JSON object a line."""
    from idp.accounts import guardians
    from idp.cli import Ctx, fail
    from idp.store.models import School

    ctx = click_ctx.ensure_object(Ctx)
    with ctx.services.db.session() as db:
        school = db.scalar(select(School).where(School.code == school_code))
        if school is None:
            fail(f"no school {school_code}")
        for view in guardians.links_in(db, _actor(), school_id=school.id):
            click.echo(json.dumps(guardians.link_view(view), ensure_ascii=False))


@guardian.command("consent-age")
@click.option("--school", "school_code", required=True)
@click.option("--under", type=click.IntRange(0, 20), required=True,
              help="pupils younger than this need a guardian's yes (0: never)")
@click.pass_context
def consent_age(click_ctx, school_code: str, under: int) -> None:
    """Set the age under which a pupil needs a guardian's yes for an app (default 13)."""
    from idp.accounts import guardians
    from idp.cli import Ctx, fail
    from idp.store.models import School

    ctx = click_ctx.ensure_object(Ctx)
    with ctx.services.db.session() as db:
        school = db.scalar(select(School).where(School.code == school_code))
        if school is None:
            fail(f"no school {school_code}")
        guardians.set_consent_age(db, _actor(), school, under)
    click.echo(json.dumps({"school_code": school_code, "guardian_consent_age": under}))
