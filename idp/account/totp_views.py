"""``/account/totp``: a guardian turns the sign-in's 確認コード (TOTP) on or off. Parse, call
:mod:`idp.account.totp_page`, render. Every password or code check is throttled like a
sign-in (reserved before the check, idp.signin.throttle)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.account import totp_page
from idp.account.forms import TotpConfirmForm, TotpOffForm, TotpStartForm
from idp.services import services
from idp.signin import totp
from idp.signin.current import current_user
from idp.signin.throttle import audit_guessing
from idp.store.models import Account

bp = Blueprint("account_totp", __name__, url_prefix="/account/totp")

ERRORS = {
    "wrong_current": _l("いまのパスワードがちがいます。"),
    "bad_code": _l("<ruby>確認<rt>かくにん</rt></ruby>コードがちがいます。"
                   "アプリの新しいコードを入れてください。"),
    "already_on": _l("<ruby>確認<rt>かくにん</rt></ruby>コードは、もうオンです。"),
    "not_on": _l("<ruby>確認<rt>かくにん</rt></ruby>コードはオンになっていません。"
                 "はじめからやりなおしてください。"),
}


def _client_ip() -> str:
    return request.remote_addr or "unknown"


def _guardian():
    user = current_user()
    if user is None:
        return None, redirect(url_for("auth.login"), 303)
    if not totp_page.may_use(user.account):
        return None, (render_template("error.html", error="403", http_error=True, message=_(
            "<ruby>確認<rt>かくにん</rt></ruby>コードは、おうちの人のIDでつかえます。"
            "児童生徒はマイナンバーカードでサインインしてね。")), 403)
    return user.account, None


def _page(db, account: Account, status: int = 200, **extra):
    row = totp_page.pending(db, account)
    uri = totp.provisioning_uri(row, totp_page.label(account)) if row is not None else None
    return render_template("account/totp.html", on=totp_page.is_on(db, account),
                           secret=row.secret if row is not None else None,
                           qr=totp.provisioning_qr(uri) if uri else None,
                           start_form=TotpStartForm(), confirm_form=TotpConfirmForm(),
                           off_form=TotpOffForm(), **extra), status


@bp.get("/")
def home():
    account, away = _guardian()
    if away:
        return away
    with services().db.session() as db:
        return _page(db, db.get(Account, account.id))


def _checked(action: str, run):
    """Run ``run(db, account)`` under the throttle; a wrong password or code is a failure."""
    account, away = _guardian()
    if away:
        return away
    svc = services()
    attempt = svc.throttle.begin(f"account-totp:{account.id}", _client_ip(),
                                 account_id=account.id)
    with svc.db.session() as db:
        me = db.get(Account, account.id)
        if not attempt.allowed:
            return _page(db, me, 429, error=_("すこしまってから、もう一度ためしてください。"))
        try:
            run(db, me)
        except totp_page.TotpPageError as exc:
            db.rollback()
            if exc.code in ("wrong_current", "bad_code"):
                attempt.failed()
                audit_guessing(db, attempt, ip=_client_ip(), step=f"account_totp_{action}")
                db.commit()
            else:
                attempt.succeeded()
            return _page(db, me, 401 if exc.code in ("wrong_current", "bad_code") else 409,
                         error=str(ERRORS.get(exc.code, exc.code)))
        attempt.succeeded()
        if action == "start":
            return _page(db, me)
    flash(_("<ruby>確認<rt>かくにん</rt></ruby>コードをオンにしました。つぎからパスワードのあとで、"
            "<ruby>確認<rt>かくにん</rt></ruby>コードをききます。")
          if action == "confirm" else _("<ruby>確認<rt>かくにん</rt></ruby>コードをやめました。"))
    return redirect(url_for("account.home"), 303)


@bp.post("/start")
def start():
    form = TotpStartForm()
    if not form.validate_on_submit():
        return redirect(url_for("account_totp.home"), 303)
    return _checked("start", lambda db, me: totp_page.start(db, me, form.current.data))


@bp.post("/confirm")
def confirm():
    form = TotpConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("account_totp.home"), 303)
    return _checked("confirm", lambda db, me: totp_page.confirm(db, me, form.code.data))


@bp.post("/off")
def off():
    form = TotpOffForm()
    if not form.validate_on_submit():
        return redirect(url_for("account_totp.home"), 303)
    return _checked("off", lambda db, me: totp_page.turn_off(db, me, form.current.data,
                                                             form.code.data))
