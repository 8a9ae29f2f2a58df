"""Relying-party pages under ``/admin/clients``: list, register, edit, enable/disable,
rotate the secret, delete. Rules live in :mod:`idp.clients.registry`."""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Response, abort, redirect, request, session, url_for
from sqlalchemy import select

from idp.accounts.roles import Action, Actor, require
from idp.admin import accounts
from idp.admin.forms import ActionForm, ClientForm
from idp.admin.handoff_sheet import HandoffFacts, handoff_pdf
from idp.admin.messages import client_error
from idp.admin.sheets import fonts
from idp.admin.views import bp, render
from idp.admin.web_auth import admin_required
from idp.audit import audit
from idp.clients import metadata, registry
from idp.clients.auth_methods import SECRET_METHODS
from idp.clients.registry import ClientMetadataError, register_client
from idp.services import services
from idp.store.models import Client


def _spec_from_form(form: ClientForm):
    def lines(text: str | None) -> list[str]:
        return [line.strip() for line in (text or "").splitlines() if line.strip()]

    data: dict[str, Any] = {
        "client_name": form.client_name.data,
        "redirect_uris": lines(form.redirect_uris.data),
        "post_logout_redirect_uris": lines(form.post_logout_redirect_uris.data),
        "sector_identifier_uri": form.sector_identifier_uri.data or None,
        "token_endpoint_auth_method": form.token_endpoint_auth_method.data,
        "scopes": list(form.scopes.data or []) or ["openid"],
        "jwks_uri": form.jwks_uri.data or None,
        "id_token_signed_response_alg": form.id_token_signed_response_alg.data,
        "required_acr": form.required_acr.data or None,
        "logo_uri": form.logo_uri.data or None,
        "contacts": [c.strip() for c in (form.contacts.data or "").split(",") if c.strip()],
        "access_token_lifetime": form.access_token_lifetime.data,
        "refresh_token_lifetime": form.refresh_token_lifetime.data,
    }
    if form.jwks.data and form.jwks.data.strip():
        try:
            data["jwks"] = json.loads(form.jwks.data)
        except ValueError as exc:
            raise ClientMetadataError("jwks is not JSON", reason="jwks") from exc
    return metadata.spec_from_metadata(data)


def _fill_client_form(form: ClientForm, row: Client) -> None:
    form.client_name.data = row.name
    form.redirect_uris.data = "\n".join(row.redirect_uris or [])
    form.post_logout_redirect_uris.data = "\n".join(row.post_logout_redirect_uris or [])
    form.sector_identifier_uri.data = row.sector_identifier_uri or ""
    form.token_endpoint_auth_method.data = row.token_endpoint_auth_method
    form.scopes.data = list(row.scopes or [])
    form.jwks_uri.data = row.jwks_uri or ""
    form.jwks.data = json.dumps(row.jwks) if row.jwks else ""
    form.id_token_signed_response_alg.data = row.id_token_signed_response_alg
    form.required_acr.data = row.required_acr or ""
    form.logo_uri.data = row.logo_uri or ""
    form.contacts.data = ", ".join(row.contacts or [])
    form.access_token_lifetime.data = row.access_token_lifetime
    form.refresh_token_lifetime.data = row.refresh_token_lifetime
    form.allow_graduates.data = bool(row.allow_graduates)


@bp.get("/clients")
@admin_required
def clients(actor: Actor):
    require(actor, Action.CLIENTS)
    with services().db.session() as db:
        rows = list(db.scalars(select(Client).order_by(Client.created_at)))
    return render("admin/clients.html", actor, clients=rows)


@bp.route("/clients/new", methods=["GET", "POST"])
@admin_required
def client_new(actor: Actor):
    require(actor, Action.CLIENTS)
    form = ClientForm()
    if request.method == "GET" or not form.validate_on_submit():
        return render("admin/client_form.html", actor,
                       400 if request.method == "POST" else 200, form=form, row=None)
    try:
        row, secret = register_client(services(), _spec_from_form(form),
                                      actor=actor.account_id)
    except ClientMetadataError as exc:
        return render("admin/client_form.html", actor, 400, form=form, row=None,
                       error=client_error(exc))
    if form.allow_graduates.data:
        with services().db.session() as db:
            registry.set_allow_graduates(db, db.get(Client, row.client_id), True,
                                         actor=actor.account_id)
    hand_off_secret(row.client_id, secret)
    return redirect(url_for("admin.client_handoff", client_id=row.client_id), 303)


def _load_client(db, client_id: str) -> Client:
    row = db.get(Client, client_id) if len(client_id) <= 64 else None
    if row is None:
        raise accounts.NotFound("no such client")
    return row


@bp.route("/clients/<client_id>", methods=["GET", "POST"])
@admin_required
def client_detail(actor: Actor, client_id: str):
    require(actor, Action.CLIENTS)
    svc = services()
    form = ClientForm()
    with svc.db.session() as db:
        row = _load_client(db, client_id)
        if request.method == "GET":
            _fill_client_form(form, row)
        error = None
        if request.method == "POST" and form.validate_on_submit():
            try:
                secret = registry.update_client(svc, db, row, _spec_from_form(form),
                                                     actor=actor.account_id)
                registry.set_allow_graduates(db, row, bool(form.allow_graduates.data),
                                             actor=actor.account_id)
            except ClientMetadataError as exc:
                db.rollback()
                error = client_error(exc)
            else:
                db.commit()
                if secret:  # the method now needs a secret: handed over like a new one
                    hand_off_secret(client_id, secret)
                    return redirect(url_for("admin.client_handoff", client_id=client_id), 303)
                return redirect(url_for("admin.client_detail", client_id=client_id), 303)
        status = 400 if request.method == "POST" else 200
        return render("admin/client_form.html", actor, status, form=form, row=row,
                       error=error, action_form=ActionForm(), secret_methods=SECRET_METHODS)


@bp.post("/clients/<client_id>/<operation>")
@admin_required
def client_action(actor: Actor, client_id: str, operation: str):
    require(actor, Action.CLIENTS)
    if operation not in ("enable", "disable", "rotate", "delete"):
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    with services().db.session() as db:
        row = _load_client(db, client_id)
        if operation in ("enable", "disable"):
            registry.set_enabled(db, row, operation == "enable", actor=actor.account_id)
        elif operation == "rotate":
            try:
                hand_off_secret(row.client_id, registry.rotate(db, row, actor=actor.account_id))
            except ClientMetadataError:
                abort(400)
            return redirect(url_for("admin.client_handoff", client_id=client_id), 303)
        else:
            registry.delete_client(db, row, actor=actor.account_id)
            return redirect(url_for("admin.clients"), 303)
    return redirect(url_for("admin.client_detail", client_id=client_id), 303)


# ----------------------------------------------------------------------------- hand-off
HANDOFF_KEY = "admin_client_handoff"
#: The secret the hand-off page just showed, kept for that page's「PDFで保存」only: the PDF
#: POST pops it (a second PDF has no secret), reloading the page drops it, and it expires.
HANDOFF_PDF_KEY = "admin_client_handoff_pdf"
HANDOFF_PDF_SECONDS = 15 * 60


def hand_off_secret(client_id: str, secret: str | None) -> None:
    """The new secret, for the very next hand-off page of this app only: it is popped when
    shown, so a reload (or the back button) never shows it again; only its hash is kept."""
    if secret:
        session[HANDOFF_KEY] = {"client_id": client_id, "secret": secret}
    else:
        session.pop(HANDOFF_KEY, None)


def _take_secret(client_id: str) -> str | None:
    held = session.pop(HANDOFF_KEY, None)
    if isinstance(held, dict) and held.get("client_id") == client_id:
        return held.get("secret")
    return None


@bp.get("/clients/<client_id>/handoff")
@admin_required
def client_handoff(actor: Actor, client_id: str):
    """What the app's vendor needs to connect: a page the IT person copies from."""
    require(actor, Action.CLIENTS)
    svc = services()
    with svc.db.session() as db:
        row = _load_client(db, client_id)
        secret = _take_secret(row.client_id)
        _hold_for_pdf(row.client_id, secret)
        issuer = svc.settings.issuer.rstrip("/")
        body, status = render("admin/client_handoff.html", actor, row=row, secret=secret,
                              issuer=issuer,
                              discovery_url=f"{issuer}/.well-known/openid-configuration",
                              uses_secret=row.token_endpoint_auth_method in SECRET_METHODS,
                              action_form=ActionForm())
    # The secret must not come back from a cache either.
    return body, status, {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _hold_for_pdf(client_id: str, secret: str | None) -> None:
    if secret:
        session[HANDOFF_PDF_KEY] = {"client_id": client_id, "secret": secret,
                                    "until": time.time() + HANDOFF_PDF_SECONDS}
    else:  # a reload (or another app's page): the secret is gone for the PDF too
        session.pop(HANDOFF_PDF_KEY, None)


def _take_secret_for_pdf(client_id: str) -> str | None:
    held = session.pop(HANDOFF_PDF_KEY, None)
    if (isinstance(held, dict) and held.get("client_id") == client_id
            and float(held.get("until") or 0) > time.time()):
        return held.get("secret")
    return None


@bp.post("/clients/<client_id>/handoff.pdf")
@admin_required
def client_handoff_pdf(actor: Actor, client_id: str):
    """The hand-off page as a PDF. A POST (with the CSRF token) from the page: the secret is
    printed in the first PDF after the page showed it, and never again."""
    require(actor, Action.CLIENTS)
    if not ActionForm().validate_on_submit():
        abort(400)
    fonts()  # no font (SheetFontMissing, a 503): fail before the held secret is spent
    svc = services()
    with svc.db.session() as db:
        row = _load_client(db, client_id)
        secret = _take_secret_for_pdf(row.client_id)
        issuer = svc.settings.issuer.rstrip("/")
        pdf = handoff_pdf(HandoffFacts(
            app_name=row.name, issuer=issuer,
            discovery_url=f"{issuer}/.well-known/openid-configuration",
            client_id=row.client_id, auth_method=row.token_endpoint_auth_method,
            redirect_uris=list(row.redirect_uris or []),
            post_logout_redirect_uris=list(row.post_logout_redirect_uris or []),
            scopes=list(row.scopes or []), id_token_alg=row.id_token_signed_response_alg,
            uses_secret=row.token_endpoint_auth_method in SECRET_METHODS, secret=secret))
        audit(db, "client.handoff_pdf", actor=actor.account_id, client_id=row.client_id,
              secret_included=secret is not None)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": "attachment; filename=mynagate-handoff.pdf",
        "Cache-Control": "no-store", "Pragma": "no-cache"})
