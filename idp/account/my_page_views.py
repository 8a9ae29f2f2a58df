"""The student's own pages under ``/account``: parse, call :mod:`idp.account.my_page`, render."""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from idp import school_class
from idp.account import my_page
from idp.account.forms import CardPasswordForm, PasswordForm, ResetForm, WithdrawForm
from idp.accounts.lifecycle import graduate_access_ends, status_of
from idp.audit import audit
from idp.japan_time import japan_date, japan_day_and_time
from idp.services import services
from idp.signin.context import ACR_CARD, AMR_CARD
from idp.signin.current import current_user, sign_in
from idp.signin.sessions import end_account_sessions
from idp.store.models import Account, School

bp = Blueprint("account", __name__, url_prefix="/account")

# What each released claim is, in words a 10-year-old can follow.
CLAIM_WORDS = {
    "name": _l("名前"),
    "school_code": _l("学校"),
    "school_name": _l("学校"),
    "grade": _l("学年"),
    "class_name": _l("クラス"),
    "homeroom": _l("クラス"),
    "role": _l("児童・生徒か先生か"),
    "status": _l("<ruby>在学中<rt>ざいがくちゅう</rt></ruby>か卒業したか"),
}
SCOPE_WORDS = {
    "openid": _l("アプリごとの番号"),
    "profile": _l("名前"),
    "school": _l("学校・学年・クラス"),
    "offline_access": _l("いないときもつながったまま"),
    "guardian": _l("おうちの人のかくにん"),
}
PASSWORD_ERRORS = {
    "wrong_current": _l("いまのパスワードがちがいます。"),
    "mismatch": _l("新しいパスワードが2回とも同じになっていません。"),
    "too_short": _l("パスワードは8文字以上にしてね。"),
    "too_long": _l("パスワードは128文字までにしてね。"),
    "too_common": _l("そのパスワードはかんたんすぎて、ほかの人に当てられてしまいます。"),
    "same_as_first": _l("先生の紙にあったパスワードとはちがう、じぶんだけのパスワードにしてね。"),
    "not_first": _l("このIDのパスワードは、もうじぶんで決めてあります。"),
    "bad_code": _l("学校・ID・コードのどれかがちがうか、コードの<ruby>期限<rt>きげん</rt></ruby>"
                   "が切れています。"),
    "not_card": _l("カードでサインインしたときだけ、カードで新しいパスワードを決められます。"
                   "カードでサインインしてね。"),
    "stale": _l("カードでサインインしてから5分より長くたちました。"
                "もう一度カードでサインインしてね。"),
    "spent": _l("このサインインでは、もうパスワードを決めました。また決めるときは、"
                "もう一度カードでサインインしてね。"),
    "card_gone": _l("このカードは、いまはこのIDで使えません。先生に相談してね。"),
    "admin_card_without_totp": _l(
        "管理者のIDでは、<ruby>確認<rt>かくにん</rt></ruby>コードを入れてつないだカードで"
        "ないと、カードだけでパスワードを決められません。"),
}
#: Refusals of the card proof (the rest are the password policy's).
CARD_PROOF_CODES = frozenset({"not_card", "stale", "spent", "card_gone",
                              "admin_card_without_totp"})


def claim_words(claims: list[str]) -> list[str]:
    """The released claims in the current language, each kind named once."""
    words: list[str] = []
    for claim in claims:
        word = str(CLAIM_WORDS.get(claim, claim))
        if word not in words:
            words.append(word)
    return words or [str(SCOPE_WORDS["openid"])]


def client_ip() -> str:
    return request.remote_addr or "unknown"


def _signed_in():
    user = current_user()
    if user is None:
        return None, redirect(url_for("auth.login"), 303)
    return user, None


@bp.get("/")
def home():
    user, away = _signed_in()
    if away:
        return away
    services().events.flush()  # what the apps received a moment ago is listed too
    with services().db.session() as db:
        apps = my_page.apps_in_use(db, user.account.id)
        cards = my_page.my_cards(db, user.account.id)
        moves = my_page.school_moves(db, user.account.id)
        card_recovery = _card_problem(db, user) is None
    ends = graduate_access_ends(user.account)
    return render_template("account/home.html", account=user.account, apps=apps,
                           status=status_of(user.account),
                           graduate_until=japan_date(ends) if ends else None,
                           cards=cards, moves=moves, form=WithdrawForm(),
                           claim_words=claim_words,
                           scope_words=SCOPE_WORDS, messages=get_flashed_messages(),
                           card_recovery=card_recovery, when=_when, class_words=_class_words)


def _class_words(grade: str | None, class_name: str | None) -> str:
    """「5年 1組」 or 「5年 ひまわり学級」 (idp.school_class's rule), in the page's language."""
    from flask_babel import get_locale

    return school_class.class_words(grade, class_name, str(get_locale() or "ja"))


def _when(moment) -> str:
    """「12月1日（月） 8:43」 in Japan time, in the page's language."""
    from flask_babel import get_locale

    return japan_day_and_time(moment, str(get_locale() or "ja"))


@bp.post("/apps/<client_id>/withdraw")
def withdraw(client_id: str):
    user, away = _signed_in()
    if away:
        return away
    form = WithdrawForm()
    if not form.validate_on_submit():
        return redirect(url_for("account.home"), 303)
    with services().db.session() as db:
        done = my_page.withdraw_consent(db, user.account.id, client_id[:64])
    if done:
        flash(_("そのアプリにわたすのをやめました。つかうときは、もう一度「いいよ」をおしてね。"))
    return redirect(url_for("account.home"), 303)


@bp.route("/password", methods=["GET", "POST"])
def password():
    user, away = _signed_in()
    if away:
        return away
    svc = services()
    form = PasswordForm()
    if request.method == "GET" or not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("account/password.html", form=form), status
    # Reserved before the current password is checked, like every sign-in (idp.signin.throttle).
    attempt = svc.throttle.begin(f"pwchange:{user.account.id}", client_ip(),
                                 account_id=user.account.id)
    if not attempt.allowed:
        return render_template("account/password.html", form=form,
                               error=_("すこしまってから、もう一度ためしてね。")), 429
    with svc.db.session() as db:
        account = db.get(Account, user.account.id)
        try:
            my_page.change_password(db, account, form.current.data, form.new.data,
                                    form.repeat.data)
        except my_page.PasswordChangeError as exc:
            db.rollback()
            if exc.code == "wrong_current":
                attempt.failed()
            else:  # the password was right; the new one was refused
                attempt.succeeded()
            return render_template("account/password.html", form=form,
                                   error=str(PASSWORD_ERRORS[exc.code])), 400
    attempt.succeeded()
    # Sessions elsewhere (a shared tablet) end; this one continues with a new id.
    end_account_sessions(svc.store, account.id)
    sign_in(account, acr=user.auth.acr, amr=user.auth.amr)
    flash(_("パスワードをかえました。"))
    return redirect(url_for("account.home"), 303)


def _schools() -> list[SelectChoice]:
    with services().db.session() as db:
        rows = db.scalars(select(School).order_by(School.name))
        return [SelectChoice(s.code, s.name) for s in rows]


@bp.route("/reset", methods=["GET", "POST"])
def reset():
    svc = services()
    form = ResetForm()
    form.school.choices = _schools()
    if request.method == "GET" or not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("account/reset.html", form=form), status
    school, login_id = form.school.data, form.login_id.data.strip()
    attempt = svc.throttle.begin(f"reset:{school}:{login_id.lower()}", client_ip())
    if not attempt.allowed:
        return render_template("account/reset.html", form=form, error=_(
            "まちがいが続いたので、%(seconds)s秒まってからもう一度ためしてね。",
            seconds=attempt.wait)), 429
    with svc.db.session() as db:
        try:
            account = my_page.redeem_reset_code(db, school, login_id, form.code.data,
                                                form.new.data, form.repeat.data)
        except my_page.PasswordChangeError as exc:
            db.rollback()
            if exc.code == "bad_code":
                attempt.failed()
                audit(db, "account.password_reset", outcome="refused", ip=client_ip())
                db.commit()
            else:  # the code was right; the new password was refused
                attempt.succeeded()
            return render_template("account/reset.html", form=form,
                                   error=str(PASSWORD_ERRORS[exc.code])), 400
        account_id = account.id
    attempt.succeeded()
    end_account_sessions(svc.store, account_id)
    return render_template("account/reset_done.html"), 200


def _card_problem(db, user) -> str | None:
    """Whether this sign-in may set a password by card now (the POST checks again)."""
    return my_page.card_proof_problem(db, services().store, user.account, user.auth,
                                      session.get("card_binding"), now=time.time())


def _card_page(form: CardPasswordForm, status: int, *, problem: str | None = None,
               error: str | None = None):
    return render_template("account/card_password.html", form=form, problem=problem,
                           problem_text=str(PASSWORD_ERRORS[problem]) if problem else None,
                           error=error, window_minutes=my_page.CARD_RECOVERY_WINDOW // 60
                           ), status


@bp.route("/password/card", methods=["GET", "POST"])
def card_password():
    """A new password with the card alone, right after a card sign-in (no old password)."""
    user, away = _signed_in()
    if away:
        return away
    svc = services()
    form = CardPasswordForm()
    if request.method == "GET":
        with svc.db.session() as db:
            problem = _card_problem(db, user)
        return _card_page(form, 200, problem=problem)
    if not form.validate_on_submit():
        return _card_page(form, 400)
    attempt = svc.throttle.begin(f"pwchange:{user.account.id}", client_ip(),
                                 account_id=user.account.id)
    if not attempt.allowed:
        return _card_page(form, 429, error=_("すこしまってから、もう一度ためしてね。"))
    binding_id = session.get("card_binding")
    with svc.db.session() as db:
        account = db.get(Account, user.account.id)
        try:
            my_page.set_password_by_card(
                db, svc.store, account, user.auth, binding_id, form.new.data,
                form.repeat.data, now=time.time(), ip=client_ip())
        except my_page.PasswordChangeError as exc:
            db.rollback()
            if exc.code not in CARD_PROOF_CODES:  # the card was right; the password refused
                attempt.succeeded()
                return _card_page(form, 400, error=str(PASSWORD_ERRORS[exc.code]))
            attempt.failed()
            my_page.audit_card_refusal(db, account, exc.code, ip=client_ip())
            db.commit()
            return _card_page(form, 403, problem=exc.code)
    attempt.succeeded()
    _after_card_password(svc, account, user, binding_id)
    flash(_("新しいパスワードを決めました。次からは、カードでも新しいパスワードでも"
            "サインインできます。"))
    return redirect(url_for("account.home"), 303)


def _after_card_password(svc, account: Account, user, binding_id: str) -> None:
    """Every other session ends (someone who knew the old password may be signed in: that
    is often why the password is being set); this browser goes on at the card level in a
    new session id, but as the same card sign-in: its time, card and ``sid`` (so the five
    minutes are not restarted, and the claim that spent this card sign-in still applies:
    one tap, one new password)."""
    end_account_sessions(svc.store, account.id)
    sign_in(account, acr=ACR_CARD, amr=AMR_CARD, card_binding=binding_id)
    session["auth_time"], session["sid"] = user.auth.auth_time, user.auth.sid
