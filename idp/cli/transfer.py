"""``idp account transfer``: the operator moves an account to another school at once (a
platform-level tool, like a platform admin on the admin pages; no offer is needed)."""

from __future__ import annotations

import json

import click
from sqlalchemy import select


def register(cli: click.Group) -> None:
    from idp.cli import fail, pass_ctx

    account = cli.commands["account"]
    if not isinstance(account, click.Group) or "transfer" in account.commands:
        return

    @account.command("transfer")
    @click.option("--school", "school_code", required=True, help="The school it is in now")
    @click.option("--login", "login_id", required=True, help="Its login id there")
    @click.option("--to", "to_school_code", required=True, help="The school it moves to")
    @click.option("--new-login", "new_login", default=None,
                  help="Its login id at the new school (default: the same)")
    @pass_ctx
    def account_transfer(ctx, school_code: str, login_id: str, to_school_code: str,
                         new_login: str | None) -> None:
        """Move an account to another school. Its id, cards, consents and every app's sub
        stay; its sessions and tokens end (it signs in again with the new school)."""
        from idp.admin import transfers
        from idp.admin.accounts import AdminInputError
        from idp.store.models import Account, School

        svc = ctx.services
        with svc.db.session() as db:
            row = db.scalar(select(Account).join(School).where(
                School.code == school_code, Account.login_id == login_id))
            if row is None:
                fail(f"no account {login_id} in school {school_code}")
            try:
                to_school = transfers.school_for_code(db, to_school_code)
                moved = transfers.move(svc, db, row, to_school,
                                       transfers.checked_login(new_login), actor_id="cli")
            except AdminInputError as exc:
                db.rollback()
                fail(f"{exc.code}: {exc}")
            body = {"id": row.id, "transfer_id": moved.id, "from": school_code,
                    "to": to_school.code, "login": row.login_id}
        click.echo(json.dumps(body, ensure_ascii=False))
