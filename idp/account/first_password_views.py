"""The first password on the teacher's slip is changed at the first password sign-in.

A guard before every request: a browser signed in with a first password (the account says
``must_change_password`` and this sign-in was by password) sees only this page, whatever URL
it asks for (``/authorize``, ``/account/``, a bookmarked app link), until a new password is
set. The card sign-in skips it: the card, not the paper, proved who signed in.

Known risk, on purpose: the slip is paper a teacher hands out. Whoever reads it and signs in
first sets the password; the student then cannot sign in with the slip and goes to the
teacher, who issues a reset code (the audit log shows ``account.first_password_changed``
with the time). See docs/admin-guide.md, "First passwords".
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for

from idp.account import my_page
from idp.account.forms import CardPasswordForm
from idp.account.my_page_views import PASSWORD_ERRORS
from idp.services import services
from idp.signin.current import current_user, must_change_now, sign_in
from idp.signin.sessions import end_account_sessions
from idp.store.models import Account

bp = Blueprint("first_password", __name__, url_prefix="/account")

#: What a browser with a first password may still reach: this page, sign-out, the static
#: files and help, and the endpoints apps call without the browser's session.
OPEN_ENDPOINTS = frozenset({
    "first_password.change", "static", "oidc.logout", "oidc.token", "oidc.userinfo",
    "oidc.revoke", "oidc.introspect", "oidc.jwks", "oidc.discovery", "help.card_bridge"})
AFTER_KEY = "after_first_password"


@bp.before_app_request
def _first_password_first():
    if request.endpoint in OPEN_ENDPOINTS or request.endpoint is None:
        return None
    if not must_change_now():
        return None
    if request.method == "GET" and request.endpoint == "oidc.authorize":
        # The app's sign-in goes on after the new password (a path on this site only).
        session[AFTER_KEY] = request.full_path
    return redirect(url_for("first_password.change"), 303)


def _page(form: CardPasswordForm, status: int, error: str | None = None):
    return render_template("account/first_password.html", form=form, error=error), status


@bp.route("/first-password", methods=["GET", "POST"])
def change():
    if not must_change_now():
        return redirect(url_for("account.home"), 303)
    user = current_user()
    svc = services()
    form = CardPasswordForm()
    if request.method == "GET" or not form.validate_on_submit():
        return _page(form, 400 if request.method == "POST" else 200)
    with svc.db.session() as db:
        account = db.get(Account, user.account.id)
        try:
            my_page.set_first_password(db, account, form.new.data, form.repeat.data)
        except my_page.PasswordChangeError as exc:
            db.rollback()
            return _page(form, 400, str(PASSWORD_ERRORS[exc.code]))
    # Anyone else who signed in with the slip's password is signed out with it.
    after = session.pop(AFTER_KEY, None)
    end_account_sessions(svc.store, account.id)
    sign_in(account, acr=user.auth.acr, amr=user.auth.amr)
    if isinstance(after, str) and after.startswith("/authorize") and "//" not in after:
        return redirect(after, 303)
    return redirect(url_for("account.home", first="done"), 303)
