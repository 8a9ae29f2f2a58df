"""Admin sign-in under ``/admin``: password, then TOTP (with the one-time enrolment
code that opens a first enrolment), sign-out, and the home page it lands on."""

from __future__ import annotations

import time

from flask import redirect, request, session, url_for
from flask_babel import gettext as _

from idp.accounts import codes
from idp.accounts.roles import ADMIN_ROLES
from idp.admin import credentials, web_auth
from idp.admin.forms import ActionForm, AdminLoginForm, EnrolCodeForm, TotpForm
from idp.admin.views import bp, client_ip, render, safe_next
from idp.audit import audit
from idp.auth.login_views import admin_link_url
from idp.metrics import count_sign_in
from idp.services import services
from idp.signin import device_cookie, password, totp
from idp.signin.context import ACR_PASSWORD
from idp.signin.current import sign_in, sign_out
from idp.signin.throttle import audit_guessing
from idp.store.models import Account

#: The admin sign-in's password step: staff only, its own throttle keys, no rehash.
ADMIN_PASSWORD = password.PasswordStep(
    key_prefix="admin:", event="admin.login", usable=credentials.is_staff_account,
    unusable_reason="not_admin", guessing=(("step", "admin"),), rehash=False,
    method="admin_password")


@bp.route("/login", methods=["GET", "POST"])
def login():
    svc = services()
    form = AdminLoginForm()
    reason = request.args.get("reason")
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if request.method == "GET" or not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return _login_page(form, status, reason=reason)
    with svc.db.session() as db:
        result = password.sign_in_with_password(
            db, svc.throttle, school_code=form.school.data.strip(),
            login_id=form.login_id.data.strip(), password=form.password.data, ip=client_ip(),
            device_cookie=device_cookie.current(), step=ADMIN_PASSWORD)
        if result.refused == password.SLOW_DOWN:
            return _admin_slow_down(form, result.wait)
        if not result.ok:
            return _login_page(form, 401,
                               error=_("IDかパスワードがちがうか、管理者ではありません。"))
        account, device = result.account, result.device
        session[web_auth.PENDING_KEY] = {"account_id": account.id, "at": time.time(),
                                         "next": safe_next(form.next.data)}
    return device_cookie.attach(redirect(url_for("admin.totp_step"), 303), device)


def _login_page(form: AdminLoginForm, status: int, **context):
    """The sign-in page: the password form, and the card sign-in beside it when cards are
    on (idp.admin.card_login_views)."""
    next_target = safe_next(form.next.data or request.args.get("next"))
    return render("admin/login.html", None, status, form=form,
                  card_enabled=services().card.enabled,
                  card_challenge_url=url_for("admin.login_card_challenge"),
                  card_verify_url=url_for("admin.login_card_verify", next=next_target),
                  **context)


def _admin_slow_down(form: AdminLoginForm, seconds: int):
    return _login_page(form, 429, error=_("%(seconds)s秒まってからもう一度ためしてください。",
                                          seconds=seconds))


def _pending_account(db) -> Account | None:
    pending = session.get(web_auth.PENDING_KEY)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > \
            web_auth.PENDING_TTL:
        return None
    account = db.get(Account, pending.get("account_id", ""))
    return account if credentials.is_staff_account(account) else None


def _landing(account: Account, target: str | None) -> str:
    """Where a signed-in staff member goes: a teacher only ever to the card linking."""
    if account.role in ADMIN_ROLES:
        return safe_next(target)
    if target and target.startswith("/admin/link-card"):
        return safe_next(target)
    return url_for("admin.link_roster")


def _pending_enrolment(db):
    """The staff account whose password was just checked (None: none, or too long ago) and
    its TOTP enrolment."""
    account = _pending_account(db)
    return (account, totp.enrolment(db, account.id)) if account is not None else (None, None)


@bp.route("/totp", methods=["GET", "POST"])
def totp_step():
    svc = services()
    form = TotpForm()
    with svc.db.session() as db:
        account, enrolment = _pending_enrolment(db)
        if account is None:
            return redirect(url_for("admin.login", reason="login"), 303)
        enrolling = enrolment.confirmed_at is None
        # The first enrolment shows the secret only after a one-time enrolment code.
        shown = enrolling and _enrolment_opened(account.id)
        context = {"form": form, "enrolling": enrolling, "enrol_form": EnrolCodeForm(),
                   "opened": shown, "secret": enrolment.secret if shown else None,
                   "uri": totp.provisioning_uri(enrolment, f"{account.school.code}/"
                                                           f"{account.login_id}")
                   if shown else None}
        context["qr_uri"] = totp.provisioning_qr(context["uri"]) if context["uri"] else None
        if request.method == "GET" or not form.validate_on_submit():
            return render("admin/totp.html", None, 400 if request.method == "POST" else 200,
                           **context)
        if enrolling and not shown:
            return render("admin/totp.html", None, 403, **context,
                           error=_("先に、登録コードを入れてください。"))
        attempt = svc.throttle.begin(f"admin-totp:{account.id}", client_ip(),
                                     account_id=account.id, device=device_cookie.current())
        if not attempt.allowed or not totp.verify(enrolment, form.code.data):
            if attempt.allowed:
                attempt.failed()
            audit(db, "admin.totp", outcome="refused", account_id=account.id, ip=client_ip(),
                  reason="bad_code" if attempt.allowed else "slow_down")
            count_sign_in("totp", "bad_code" if attempt.allowed else "slow_down")
            audit_guessing(db, attempt, ip=client_ip(), step="totp")
            db.commit()
            context["error"] = _("確認コードがちがいます。アプリの新しいコードを入れてください。")
            return render("admin/totp.html", None, 401, **context)
        device = attempt.succeeded(device_cookie.current())
        count_sign_in("totp")
        audit(db, "admin.login", account_id=account.id, school_id=account.school_id,
              ip=client_ip(), mfa="totp", enrolled=enrolling)
        target = session[web_auth.PENDING_KEY].get("next") or url_for("admin.home")
        landing = _landing(account, target)
    sign_in(account, acr=ACR_PASSWORD, amr=["pwd", "otp", "mfa"])
    web_auth.mark_admin("totp")
    # A card this admin tapped and gave the password for: offered now, after TOTP.
    link_url = admin_link_url(account.id) if account.role in ADMIN_ROLES else None
    return device_cookie.attach(redirect(link_url or landing, 303), device)


def _enrolment_opened(account_id: str) -> bool:
    pending = session.get(web_auth.PENDING_KEY) or {}
    return pending.get("enrol_opened") == account_id


@bp.post("/totp/enrol")
def totp_enrol():
    """The one-time enrolment code that opens a first TOTP enrolment (handed over out of
    band: the password alone must not reveal the TOTP secret)."""
    svc = services()
    form = EnrolCodeForm()
    with svc.db.session() as db:
        account, enrolment = _pending_enrolment(db)
        if account is None:
            return redirect(url_for("admin.login", reason="login"), 303)
        if enrolment.confirmed_at is not None or _enrolment_opened(account.id):
            return redirect(url_for("admin.totp_step"), 303)
        context = {"form": TotpForm(), "enrol_form": form, "enrolling": True, "opened": False,
                   "secret": None, "uri": None}
        if not form.validate_on_submit():
            return render("admin/totp.html", None, 400, **context)
        attempt = svc.throttle.begin(f"admin-enrol:{account.id}", client_ip(),
                                     account_id=account.id, device=device_cookie.current())
        if not attempt.allowed or not codes.consume_enrolment_code(
                db, account.id, form.enrolment_code.data):
            if attempt.allowed:
                attempt.failed()
            audit(db, "admin.enrolment_code", outcome="refused", account_id=account.id,
                  ip=client_ip(), reason="bad_code" if attempt.allowed else "slow_down")
            audit_guessing(db, attempt, ip=client_ip(), step="enrolment")
            db.commit()
            return render("admin/totp.html", None, 401, **context, error=_(
                "登録コードがちがうか、期限が切れています。管理者に新しいコードをもらってください。"))
        attempt.succeeded()
        totp.renew_secret(db, account.id)
        audit(db, "admin.enrolment_code_used", account_id=account.id,
              school_id=account.school_id, ip=client_ip())
        # Five more minutes from now to scan the key and confirm a code: the enrolment code
        # is spent, so running out of time here would cost a new one.
        session[web_auth.PENDING_KEY] = {**session[web_auth.PENDING_KEY],
                                         "enrol_opened": account.id, "at": time.time()}
    return redirect(url_for("admin.totp_step"), 303)


@bp.post("/logout")
def logout():
    form = ActionForm()
    if form.validate_on_submit():
        web_auth.drop_admin()
        sign_out()
    return redirect(url_for("admin.login"), 303)
