"""The guardian's page under ``/account/children``: each linked child's apps and what each
received, the child's requests to approve or decline, and taking a child's yes back.
Parse, call :mod:`idp.account.guardian_page` / :mod:`idp.accounts.guardians`, render."""

from __future__ import annotations

from flask import Blueprint, flash, get_flashed_messages, redirect, render_template, url_for
from flask_babel import gettext as _

from idp.account import guardian_page
from idp.account.forms import WithdrawForm
from idp.account.my_page_views import SCOPE_WORDS, claim_words
from idp.accounts import guardians
from idp.accounts.roles import GUARDIAN
from idp.japan_time import japan_minute
from idp.services import services
from idp.signin.current import current_user

bp = Blueprint("guardian", __name__, url_prefix="/account/children")


def _guardian():
    """The signed-in guardian, or the response to send instead (sign in; not a guardian)."""
    user = current_user()
    if user is None:
        return None, redirect(url_for("auth.login"), 303)
    if user.account.role != GUARDIAN:
        return None, (render_template("error.html", error="403", http_error=True, message=_(
            "このページは、おうちの人のIDでサインインしたときだけ見られます。")), 403)
    return user.account, None


@bp.get("/")
def home():
    guardian, away = _guardian()
    if away:
        return away
    services().events.flush()  # what the apps received a moment ago is listed too
    with services().db.session() as db:
        children = guardian_page.children_with_apps(db, guardian.id)
        pending = guardians.pending_for(db, guardian.id)
    return render_template("account/children.html", account=guardian, children=children,
                           pending=pending, form=WithdrawForm(), claim_words=claim_words,
                           scope_words=SCOPE_WORDS, japan_time=japan_minute,
                           messages=get_flashed_messages())


@bp.post("/requests/<request_id>/<answer>")
def decide(request_id: str, answer: str):
    guardian, away = _guardian()
    if away:
        return away
    if answer not in ("approve", "decline") or not WithdrawForm().validate_on_submit():
        return redirect(url_for("guardian.home"), 303)
    with services().db.session() as db:
        try:
            guardians.decide(db, guardian, request_id[:32], approve=answer == "approve")
        except guardians.GuardianError as exc:
            db.rollback()
            if exc.code == "no_request":
                return render_template("error.html", error="404", http_error=True, message=_(
                    "そのおねがいは見つかりません。")), 404
            flash(_("そのおねがいは、もう終わっています（時間がすぎたか、答えたあとです）。"))
            return redirect(url_for("guardian.home"), 303)
    flash(_("「いいよ」と答えました。子どもがもう一度アプリをひらくと、つかえます。")
          if answer == "approve" else _("「だめ」と答えました。"))
    return redirect(url_for("guardian.home"), 303)


@bp.post("/<child_id>/apps/<client_id>/withdraw")
def withdraw(child_id: str, client_id: str):
    guardian, away = _guardian()
    if away:
        return away
    if not WithdrawForm().validate_on_submit():
        return redirect(url_for("guardian.home"), 303)
    with services().db.session() as db:
        done = guardian_page.withdraw_for_child(db, guardian, child_id[:32], client_id[:64])
    if not done:
        return render_template("error.html", error="404", http_error=True, message=_(
            "見つかりません。")), 404
    flash(_("そのアプリにわたすのをやめました。"))
    return redirect(url_for("guardian.home"), 303)
