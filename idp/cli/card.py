"""``idp card ...`` (bindings) and ``idp jpki ...`` (test PKI, CRL refresh) commands."""

from __future__ import annotations

import json
import sys

import click
from sqlalchemy import select

from idp.cli import Ctx, fail, pass_ctx


def register(cli: click.Group) -> None:
    cli.add_command(card)
    cli.add_command(jpki)


# ----------------------------------------------------------------------------- card
@click.group()
def card() -> None:
    """MyNumber-card bindings of accounts."""


@card.command("list")
@click.option("--account", "account_id", default=None, help="Account id")
@click.option("--school", "school_code", default=None, help="School code (with --login)")
@click.option("--login", "login_id", default=None, help="Login id (with --school)")
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
@pass_ctx
def card_list(ctx: Ctx, account_id: str | None, school_code: str | None, login_id: str | None,
              as_json: bool) -> None:
    """List an account's card bindings, expired, revoked and replaced ones included
    (inactive; a replaced one names the renewed card that took its place)."""
    from idp.accounts.cards import bindings_of, describe_binding
    from idp.store.models import Account, School

    if bool(account_id) == bool(school_code or login_id):
        fail("give either --account ID or --school CODE --login LOGIN")
    if not account_id and not (school_code and login_id):
        fail("--school and --login go together")
    with ctx.services.db.session() as s:
        if account_id:
            account = s.get(Account, account_id)
        else:
            account = s.scalar(select(Account).join(School).where(
                School.code == school_code, Account.login_id == login_id))
        if account is None:
            fail("no such account")
        rows = [describe_binding(b) for b in bindings_of(s, account.id)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo("no cards bound to this account")
    for row in rows:
        state = "active" if row["active"] else f"inactive ({row['status']})"
        if row["status"] == "replaced":
            state += f" by {row['replaced_by']} at {row['replaced_at']}"
        click.echo(f"{row['id']}\t{state}\tserial={row['serial']}\tnot_after={row['not_after']}"
                   f"\tlast_used={row['last_used_at'] or '-'}\tissuer={row['issuer']}")


@card.command("revoke")
@click.argument("binding_id")
@click.option("--reason", default=None, help="Why (kept in the audit log)")
@pass_ctx
def card_revoke(ctx: Ctx, binding_id: str, reason: str | None) -> None:
    """Revoke a card binding: that certificate no longer signs in, and cannot be re-linked."""
    from idp.accounts.cards import revoke_binding

    with ctx.services.db.session() as s:
        try:
            binding = revoke_binding(s, binding_id, actor="cli", reason=reason)
        except LookupError as exc:
            fail(str(exc))
        account_id = binding.account_id
    click.echo(f"revoked {binding_id} (account {account_id})")


# ----------------------------------------------------------------------------- jpki
@click.group()
def jpki() -> None:
    """JPKI certificates: test PKI and revocation data."""


@jpki.command("test-pki")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--cards", default=2, show_default=True, type=click.IntRange(1, 100))
def jpki_test_pki(directory: str, cards: int) -> None:
    """Write a JPKI-like TEST hierarchy (O=JPKI-TEST): root, cards, CRL, OCSP responder."""
    from idp.jpki.testing.pki_dir import write_test_pki

    manifest = write_test_pki(directory, cards)
    click.echo(f"test PKI written to {directory} (never trust it in production)")
    click.echo(f"root: {manifest['root']['subject']}")
    for entry in manifest["cards"]:
        click.echo(f"card {entry['index']}: serial {entry['serial']}, key {entry['key']}")
    click.echo(f"use: IDP_JPKI_TRUST_ANCHORS={directory}/root.pem "
               f"IDP_JPKI_REVOCATION=crl IDP_JPKI_CRL_SOURCES={directory}/crl.der")


@jpki.command("refresh-crl")
@pass_ctx
def jpki_refresh_crl(ctx: Ctx) -> None:
    """Load every configured CRL now, report each, and ask running servers to reload."""
    from idp.auth.card import request_crl_refresh

    service = ctx.services.card
    if service.refresher is None:
        fail(f"revocation mode {ctx.services.settings.jpki_revocation!r} uses no CRL "
             "(set IDP_JPKI_REVOCATION=crl or ocsp,crl and IDP_JPKI_CRL_SOURCES)")
    statuses = service.refresh_crls()
    for status in statuses:
        if status.ok:
            click.echo(f"ok\t{status.source}\tnext_update={status.next_update.isoformat()}"
                       f"\trevoked={status.revoked_count}")
        else:
            click.echo(f"FAILED\t{status.source}\t{status.message}")
    request_crl_refresh(ctx.services.store, ctx.services.settings.jpki_crl_refresh_interval)
    if not all(status.ok for status in statuses):
        sys.exit(1)
