"""Password sign-in and consent pages, inside a login transaction."""

from __future__ import annotations

import time

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from idp.accounts import linking
from idp.accounts.guardians import GuardianError, Need, ask_guardian
from idp.accounts.roles import GUARDIAN
from idp.audit import audit
from idp.auth.forms import ConsentForm, LinkCardForm, LoginForm, LoginTotpForm
from idp.auth.guardian_consent import GuardianStep, guardian_step
from idp.jpki.errors import CardError
from idp.oidc.interaction import LoginTransaction
from idp.oidc.views import continue_authorization
from idp.scopes import SUPPORTED_SCOPES
from idp.services import services
from idp.signin import device_cookie, password, totp
from idp.signin.context import ACR_PASSWORD, AMR_PASSWORD
from idp.signin.current import ADMIN_MFA_KEY, current_user, sign_in
from idp.signin.throttle import audit_guessing
from idp.store.models import Account, Client, Consent, School, utcnow

bp = Blueprint("auth", __name__)

# What each scope means, in words a 10-year-old can follow.
SCOPE_WORDS = {
    "openid": _l("あなただとわかる番号（アプリごとにちがう番号です）"),
    "profile": _l("あなたの名前"),
    "school": _l("学校・学年・クラス"),
    "offline_access": _l("あなたがいないときも、アプリがつながったままでいること"),
    "guardian": _l("おうちの人が「いいよ」と言ったこと"),
}


# The school list of the sign-in page: two columns, read outside a transaction (loading
# each School as an ORM object in a unit of work was ~15% of the page's CPU).
_SCHOOL_CHOICES = select(School.code, School.name).order_by(School.name)


def _schools() -> list[tuple[str, str]]:
    with services().db.read() as db:
        return [(code, name) for code, name in db.execute(_SCHOOL_CHOICES)]


def client_ip() -> str:
    return request.remote_addr or "unknown"


def _after_sign_in(txn: LoginTransaction | None):
    if txn is not None:
        return redirect(continue_authorization(txn, authenticated_at=time.time()), 303)
    return redirect(url_for("account.home") if "account.home" in _endpoints() else "/", 303)


def _endpoints() -> set[str]:
    from flask import current_app

    return set(current_app.view_functions)


@bp.route("/login", methods=["GET", "POST"])
def login():
    svc = services()
    txn_id = request.values.get("txn")
    txn = LoginTransaction.load(txn_id)
    form = LoginForm()
    form.school.choices = _schools()
    if request.method == "GET":
        form.txn.data = txn.id if txn else ""
        if txn and txn.params.get("login_hint") and not form.login_id.data:
            form.login_id.data = txn.params["login_hint"][:64]
    pending_card = _pending_card(txn)
    card_required = bool(txn and txn.card_required)
    context = {"form": form, "txn": txn, "card_required": card_required,
               "pending_card": pending_card, "reason": request.args.get("reason"),
               "card_enabled": "card.card_page" in _endpoints()}
    if request.method == "GET" and card_required and not pending_card \
            and context["card_enabled"]:
        # The app needs the card: its step is shown at once, not behind a tab.
        return redirect(url_for("card.card_page", txn=txn.id), 303)
    if request.method == "GET" or not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("login.html", **context), status
    if card_required and not pending_card:
        context["error"] = _("このアプリはマイナンバーカードでのサインインが必要です。")
        return render_template("login.html", **context), 400

    with svc.db.session() as db:
        result = password.sign_in_with_password(
            db, svc.throttle, school_code=form.school.data,
            login_id=form.login_id.data.strip(), password=form.password.data, ip=client_ip(),
            device_cookie=device_cookie.current())
        if result.refused == password.SLOW_DOWN:
            return _slow_down(context, result.wait)
        if not result.ok:
            # One message for an unknown ID and a wrong password.
            context["error"] = _("IDかパスワードがちがいます。")
            return render_template("login.html", **context), 401
        account, device = result.account, result.device
        if pending_card:
            refused = _check_card_link(db, account, pending_card, context)
            if refused is not None:
                return refused
            if linking.needs_mfa(account):
                return _admin_must_link_after_totp(db, account, pending_card, context)
        if account.role == GUARDIAN and totp.confirmed(db, account.id) is not None:
            return device_cookie.attach(_ask_for_code(account, txn, pending_card), device)
        password.audit_signed_in(db, account, ip=client_ip())
    # Password-level even with a card in hand: the card proves nothing about this account
    # until it is linked, and only a later sign-in with the linked card is card-level.
    sign_in(account, acr=ACR_PASSWORD, amr=AMR_PASSWORD)
    return device_cookie.attach(_signed_in_go_on(account, txn, pending_card), device)


def _signed_in_go_on(account: Account, txn: LoginTransaction | None, pending_card: dict | None):
    """After a password sign-in: the card tapped in this sign-in is offered, else on."""
    if pending_card:
        linking.make_offer(pending_card, account_id=account.id, sid=session["sid"], mfa=False)
        session.modified = True
        return redirect(url_for("auth.link_card", txn=txn.id if txn else None,
                                card=pending_card["id"]), 303)
    return _after_sign_in(txn)


# ----------------------------------------------------------------------------- TOTP step
#: A guardian whose password was right and who turned TOTP on: the code is asked next.
TOTP_PENDING_KEY = "login_totp"
TOTP_PENDING_TTL = 300


def _ask_for_code(account: Account, txn: LoginTransaction | None, pending_card: dict | None):
    session[TOTP_PENDING_KEY] = {"account_id": account.id, "at": time.time(),
                                 "txn": txn.id if txn else None,
                                 "card": pending_card["id"] if pending_card else None}
    return redirect(url_for("auth.login_totp", txn=txn.id if txn else None), 303)


def _totp_pending(db) -> tuple[Account | None, dict]:
    """The guardian whose password this browser gave in the last five minutes, still with
    TOTP on (else None: start again at the password)."""
    pending = session.get(TOTP_PENDING_KEY)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > TOTP_PENDING_TTL:
        return None, {}
    account = db.get(Account, pending.get("account_id") or "")
    if account is None or not account.active or account.role != GUARDIAN:
        return None, {}
    return account, pending


@bp.route("/login/totp", methods=["GET", "POST"])
def login_totp():
    """The code from the guardian's authenticator app: once per code (a replay of the same
    30-second step is refused) and throttled like a password."""
    svc = services()
    form = LoginTotpForm()
    with svc.db.session() as db:
        account, pending = _totp_pending(db)
        enrolment = totp.confirmed(db, account.id) if account is not None else None
        if enrolment is None:
            session.pop(TOTP_PENDING_KEY, None)
            return redirect(url_for("auth.login", txn=request.args.get("txn")), 303)
        txn = LoginTransaction.load(pending.get("txn"))
        if request.method == "GET" or not form.validate_on_submit():
            status = 400 if request.method == "POST" else 200
            return render_template("login_totp.html", form=form, txn=txn), status
        attempt = svc.throttle.begin(f"login-totp:{account.id}", client_ip(),
                                     account_id=account.id, device=device_cookie.current())
        if not attempt.allowed or not totp.verify(enrolment, form.code.data):
            if attempt.allowed:
                attempt.failed()
            reason = "bad_code" if attempt.allowed else "slow_down"
            audit(db, "login.totp", outcome="refused", account_id=account.id,
                  school_id=account.school_id, ip=client_ip(), reason=reason)
            audit_guessing(db, attempt, ip=client_ip(), step="guardian_totp")
            db.commit()
            error = _("<ruby>確認<rt>かくにん</rt></ruby>コードがちがいます。"
                      "アプリの新しいコードを入れてください。") \
                if attempt.allowed else _("すこしまってから、もう一度ためしてください。")
            return render_template("login_totp.html", form=form, txn=txn, error=error), \
                401 if attempt.allowed else 429
        device = attempt.succeeded(device_cookie.current())
        password.audit_signed_in(db, account, ip=client_ip())
    session.pop(TOTP_PENDING_KEY, None)
    pending_card = _pending_card_for(txn, pending.get("card"))
    sign_in(account, acr=ACR_PASSWORD, amr=["pwd", "otp", "mfa"])
    return device_cookie.attach(_signed_in_go_on(account, txn, pending_card), device)


def _pending_card_for(txn: LoginTransaction | None, card_id: str | None) -> dict | None:
    stored = session.get(linking.SESSION_KEY)
    if not card_id:
        return None
    return linking.visible_pending(stored, txn_id=txn.id if txn else None, card_id=card_id,
                                   now=time.time())


def _pending_card(txn: LoginTransaction | None) -> dict | None:
    """The card tapped in this login transaction, if this page carries its id; any other
    page (a new sign-in in the same browser) drops it, so it is never offered to the next
    person at a shared PC."""
    stored = session.get(linking.SESSION_KEY)
    visible = linking.visible_pending(stored, txn_id=txn.id if txn else None,
                                      card_id=request.values.get("card"), now=time.time())
    if visible is None and stored is not None and request.method == "GET":
        session.pop(linking.SESSION_KEY, None)
    return visible


def _check_card_link(db, account: Account, pending_card: dict, context: dict):
    """Refuse the sign-in (audited) when the tapped card may not join this account."""
    try:
        linking.offer(db, account, pending_card, ip=client_ip())
    except CardError as exc:
        session.pop(linking.SESSION_KEY, None)
        context["pending_card"] = None
        if exc.code == "card_linked_elsewhere":
            context["error"] = _("このカードは、ほかの人のIDとつながっています。"
                                 "先生に相談してね。")
        else:
            context["error"] = _("このカードはサインインに使えなくなっています。"
                                 "先生に相談してね。")
        return render_template("login.html", **context), 409
    return None


def _admin_must_link_after_totp(db, account: Account, pending_card: dict, context: dict):
    """An admin links a card only after TOTP: no sign-in here; the admin sign-in offers the
    link once the code is right (:func:`admin_link_url`)."""
    pending_card["admin_account"] = account.id
    session.modified = True
    audit(db, "card.bind", outcome="deferred", account_id=account.id,
          school_id=account.school_id, ip=client_ip(), reason="admin_needs_totp")
    context["error"] = _("管理者のIDにカードをつなぐときは、管理者のサインインで"
                         "<ruby>確認<rt>かくにん</rt></ruby>コードを入れてください。"
                         "そのあとで、つなぐかどうかをきかれます。")
    context["admin_link"] = True
    return render_template("login.html", **context), 403


def admin_link_url(account_id: str) -> str | None:
    """After an admin's TOTP: the confirmation page for the card this admin tapped (and
    then gave the password for on the sign-in page) in this browser, if any."""
    stored = session.get(linking.SESSION_KEY)
    if not linking.is_fresh(stored, time.time()) or stored.get("admin_account") != account_id:
        return None
    linking.make_offer(stored, account_id=account_id, sid=session["sid"], mfa=True)
    session.modified = True
    return url_for("auth.link_card", txn=stored.get("txn"), card=stored["id"])


@bp.route("/login/link", methods=["GET", "POST"])
def link_card():
    """The confirmation page: this card will be joined to this ID (named); つなぐ links it,
    つながない drops it and the sign-in goes on without it."""
    svc = services()
    txn = LoginTransaction.load(request.values.get("txn"))
    pending = _pending_card(txn)
    user = current_user()
    admin_mfa = session.get(ADMIN_MFA_KEY)
    if pending is None or user is None or not linking.may_confirm(
            pending, account_id=user.account.id, sid=session.get("sid"), admin_mfa=admin_mfa):
        return render_template("error.html", error="link_expired", http_error=True, message=_(
            "時間がたちすぎたので、カードはつながっていません。もう一度カードでサインインしてね。"
        )), 400
    form = LinkCardForm()
    with svc.db.session() as db:
        account = db.get(Account, user.account.id)
        try:
            offer = linking.offer(db, account, pending, ip=client_ip())
        except CardError:
            session.pop(linking.SESSION_KEY, None)
            return render_template("error.html", error="card_linked_elsewhere", http_error=True,
                                   message=_("このカードは、ほかの人のIDとつながっています。"
                                             "先生に相談してね。")), 409
        with_mfa = linking.after_totp(pending, admin_mfa)
        if offer.needs_mfa and not with_mfa:  # became an admin since the offer was made
            session.pop(linking.SESSION_KEY, None)
            return render_template("error.html", error="link_expired", http_error=True,
                                   message=_("管理者のIDにカードをつなぐときは、管理者のサインイン"
                                             "で<ruby>確認<rt>かくにん</rt></ruby>コードを"
                                             "入れてください。")), 403
        if request.method == "GET" or not form.validate_on_submit() or \
                form.card.data != pending["id"]:
            form.txn.data, form.card.data = (txn.id if txn else ""), pending["id"]
            status = 400 if request.method == "POST" else 200
            return render_template("link_card.html", form=form, offer=offer), status
        session.pop(linking.SESSION_KEY, None)
        if not form.link.data:
            linking.decline(db, account, pending, ip=client_ip())
            linked = False
        else:
            try:
                linking.link(db, account, pending, ip=client_ip(), with_mfa=with_mfa)
            except CardError:
                return render_template("error.html", error="card_linked_elsewhere",
                                       http_error=True, message=_(
                                           "このカードはつなげませんでした。先生に相談してね。")
                                       ), 409
            linked = True
    return _after_link(txn, linked=linked, admin=offer.needs_mfa)


def _after_link(txn: LoginTransaction | None, *, linked: bool, admin: bool):
    if linked and txn is not None and txn.card_required:
        # The app needs the card level: this sign-in is password-level, so ask for the
        # card once more; now linked, it signs in at the card level.
        return redirect(url_for("card.card_page", txn=txn.id, reason="linked"), 303)
    if admin and txn is None:
        return redirect(url_for("admin.home"), 303)
    return _after_sign_in(txn)


def _slow_down(context: dict, seconds: int):
    context["error"] = _("まちがいが続いたので、%(seconds)s秒まってからもう一度ためしてね。",
                         seconds=seconds)
    return render_template("login.html", **context), 429


@bp.route("/consent", methods=["GET", "POST"])
def consent():
    svc = services()
    form = ConsentForm()
    txn = LoginTransaction.load(request.values.get("txn"))
    user = current_user()
    if txn is None or user is None:
        return render_template("error.html", error="txn_expired", description=None), 400
    with svc.db.session() as db:
        client = db.get(Client, txn.client_id)
        if client is None or not client.enabled:
            return render_template("error.html", error="invalid_client", description=None), 400
        allowed = set(client.scopes or [])
        scopes = [s for s in (txn.params.get("scope") or "").split()
                  if s in SUPPORTED_SCOPES and s in allowed]
        step = guardian_step(db, user.account.id, client.client_id, scopes)
        page = {"form": form, "client": client, "account": user.account, "step": step,
                "scopes": [(s, SCOPE_WORDS.get(s, s)) for s in scopes], "txn": txn}
        if request.method == "GET" or not form.validate_on_submit():
            form.txn.data = txn.id
            return render_template("consent.html", **page)
        if form.deny.data:
            audit(db, "consent.denied", account_id=user.account.id, client_id=client.client_id)
            return redirect(continue_authorization(txn, denied=True), 303)
        if step.need != Need.NONE:
            return _guardian_must_answer(db, user.account, client, step, form, page)
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
    return redirect(continue_authorization(txn, consented_at=time.time()), 303)


def _guardian_must_answer(db, account: Account, client: Client, step: GuardianStep,
                          form: ConsentForm, page: dict):
    """A child under the school's age cannot say yes alone, by any button: "ask" sends the
    request to a linked guardian; anything else is refused (audited)."""
    form.txn.data = page["txn"].id
    if form.ask.data and step.need == Need.GUARDIAN:
        try:
            page["step"].pending = ask_guardian(db, account, client.client_id, step.new_scopes)
        except GuardianError:
            return render_template("consent.html", error=_(
                "おねがいが多すぎます。おうちの人に、いまのおねがいに答えてもらってね。"),
                **page), 429
        return render_template("consent.html", asked=True, **page)
    audit(db, "consent.granted", outcome="refused", account_id=account.id,
          client_id=client.client_id, reason="guardian_required")
    return render_template("consent.html", error=_(
        "このアプリは、おうちの人の「いいよ」が必要です。"), **page), 403
