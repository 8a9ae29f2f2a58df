"""Password sign-in and consent pages, inside a login transaction."""

from __future__ import annotations

import time

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from idp.audit import audit
from idp.auth import device_cookie, transactions
from idp.auth.current import current_user, sign_in
from idp.auth.forms import ConsentForm, LoginForm
from idp.auth.passwords import needs_rehash, verify_password
from idp.auth.throttle import audit_guessing
from idp.oidc.scopes import ACR_CARD, ACR_PASSWORD, AMR_CARD, AMR_PASSWORD, SCOPE_CLAIMS
from idp.services import services
from idp.store.models import Account, Client, Consent, School, utcnow

bp = Blueprint("auth", __name__)

# What each scope means, in words a 10-year-old can follow.
SCOPE_WORDS = {
    "openid": _l("あなただとわかる番号(アプリごとにちがう番号です)"),
    "profile": _l("あなたの名前"),
    "school": _l("学校・学年・クラス"),
    "offline_access": _l("あなたがいないときも、アプリがつながったままでいること"),
}
PENDING_CARD_TTL = 300


def _schools() -> list[tuple[str, str]]:
    with services().db.session() as db:
        return [(s.code, s.name) for s in db.scalars(select(School).order_by(School.name))]


def client_ip() -> str:
    return request.remote_addr or "unknown"


def _after_sign_in(txn: dict | None):
    if txn is not None:
        transactions.update(txn, authenticated_at=time.time())
        return redirect(transactions.resume_url(txn), 303)
    return redirect(url_for("account.home") if "account.home" in _endpoints() else "/", 303)


def _endpoints() -> set[str]:
    from flask import current_app

    return set(current_app.view_functions)


@bp.route("/login", methods=["GET", "POST"])
def login():
    svc = services()
    txn_id = request.values.get("txn")
    txn = transactions.load(txn_id)
    form = LoginForm()
    form.school.choices = _schools()
    if request.method == "GET":
        form.txn.data = txn["id"] if txn else ""
        if txn and txn["params"].get("login_hint") and not form.login_id.data:
            form.login_id.data = txn["params"]["login_hint"][:64]
    pending_card = session.get("pending_card")
    if pending_card and time.time() - pending_card.get("at", 0) > PENDING_CARD_TTL:
        session.pop("pending_card", None)
        pending_card = None
    card_required = bool(txn and txn.get("card_required"))
    context = {"form": form, "txn": txn, "card_required": card_required,
               "pending_card": pending_card, "reason": request.args.get("reason"),
               "card_enabled": "card.card_page" in _endpoints()}
    if request.method == "GET" or not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("login.html", **context), status
    if card_required and not pending_card:
        context["error"] = _("このアプリはマイナンバーカードでのサインインが必要です。")
        return render_template("login.html", **context), 400

    school_code, login_id = form.school.data, form.login_id.data.strip()
    throttle_key = f"{school_code}:{login_id.lower()}"
    with svc.db.session() as db:
        account = db.scalar(select(Account).join(School).where(
            School.code == school_code, Account.login_id == login_id))
        attempt = svc.throttle.begin(throttle_key, client_ip(), device=device_cookie.current(),
                                     account_id=account.id if account else None)
        if not attempt.allowed:
            audit_guessing(db, attempt, ip=client_ip())
            return _slow_down(context, attempt.wait)
        ok = verify_password(account.password_hash if account else None, form.password.data)
        usable = ok and account is not None and account.active and not account.locked
        if not usable:
            failure = attempt.failed()
            audit(db, "login.password", outcome="refused", ip=client_ip(),
                  account_id=account.id if account else None,
                  reason="bad_credentials" if not ok else "inactive")
            audit_guessing(db, attempt, ip=client_ip())
            db.commit()
            if failure.wait:  # the address is slowed: the same answer as for an unknown ID
                return _slow_down(context, failure.wait)
            # One message for an unknown ID and a wrong password.
            context["error"] = _("IDかパスワードがちがいます。")
            return render_template("login.html", **context), 401
        device = attempt.succeeded(device_cookie.current())
        if needs_rehash(account.password_hash):
            from idp.auth.passwords import _hasher

            account.password_hash = _hasher.hash(form.password.data)
        acr, amr = ACR_PASSWORD, AMR_PASSWORD
        if pending_card:
            from idp.auth.cards import bind_pending_card
            from idp.jpki.errors import CardError

            try:
                bind_pending_card(db, account, pending_card, ip=client_ip())
            except CardError as exc:
                # Refused and audited (e.g. the card belongs to another account): no sign-in.
                session.pop("pending_card", None)
                context["pending_card"] = None
                if exc.code == "card_linked_elsewhere":
                    context["error"] = _("このカードは、ほかの人のIDとつながっています。"
                                         "先生に相談してね。")
                else:
                    context["error"] = _("このカードはサインインに使えなくなっています。"
                                         "先生に相談してね。")
                return render_template("login.html", **context), 409
            acr, amr = ACR_CARD, AMR_CARD
        audit(db, "login.password", account_id=account.id, school_id=account.school_id,
              ip=client_ip(), acr=acr)
    sign_in(account, acr=acr, amr=amr)
    session.pop("pending_card", None)
    return device_cookie.attach(_after_sign_in(txn), device)


def _slow_down(context: dict, seconds: int):
    context["error"] = _("まちがいが続いたので、%(seconds)s秒まってからもう一度ためしてね。",
                         seconds=seconds)
    return render_template("login.html", **context), 429


@bp.route("/consent", methods=["GET", "POST"])
def consent():
    svc = services()
    form = ConsentForm()
    txn = transactions.load(request.values.get("txn"))
    user = current_user()
    if txn is None or user is None:
        return render_template("error.html", error="txn_expired", description=None), 400
    with svc.db.session() as db:
        client = db.get(Client, txn["client_id"])
        if client is None or not client.enabled:
            return render_template("error.html", error="invalid_client", description=None), 400
        allowed = set(client.scopes or [])
        scopes = [s for s in (txn["params"].get("scope") or "").split()
                  if s in SCOPE_CLAIMS and s in allowed]
        if request.method == "GET" or not form.validate_on_submit():
            form.txn.data = txn["id"]
            return render_template("consent.html", form=form, client=client,
                                   scopes=[(s, SCOPE_WORDS.get(s, s)) for s in scopes],
                                   account=user.account)
        if form.deny.data:
            audit(db, "consent.denied", account_id=user.account.id, client_id=client.client_id)
            transactions.update(txn, denied=True)
            return redirect(transactions.resume_url(txn), 303)
        record = db.scalar(select(Consent).where(Consent.account_id == user.account.id,
                                                 Consent.client_id == client.client_id))
        if record is None:
            db.add(Consent(account_id=user.account.id, client_id=client.client_id,
                           scopes=scopes))
        else:
            record.scopes = sorted(set(record.scopes or []) | set(scopes))
            record.granted_at = utcnow()
        audit(db, "consent.granted", account_id=user.account.id, client_id=client.client_id,
              scopes=scopes)
    transactions.update(txn, consented_at=time.time())
    return redirect(transactions.resume_url(txn), 303)
