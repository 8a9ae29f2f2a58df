"""An admin signs in with their card on the admin sign-in page itself (``/admin/login``).

The bridge protocol is the student sign-in's (``card.js``) with endpoints of its own. The
card stands in for password + TOTP only when it is an admin's and was linked in a sign-in
that passed TOTP (:func:`idp.accounts.linking.card_stands_in_for_totp`): a card linked with
a known password alone would otherwise make that password enough. Any other card is refused
here and signs in nobody (a student's card, a teacher's, a card linked without TOTP).
"""

from __future__ import annotations

from flask import jsonify, request
from flask_babel import gettext as _

from idp.accounts import linking
from idp.accounts.roles import ADMIN_ROLES
from idp.admin import web_auth
from idp.admin.dashboard import ADMIN_PAGE
from idp.admin.views import bp, client_ip, safe_next
from idp.audit import audit
from idp.auth.card import issue_challenge
from idp.auth.card_views import (
    card_error_response,
    card_service,
    card_unavailable_response,
    check_token,
)
from idp.jpki.errors import CardError
from idp.services import services
from idp.signin.context import ACR_CARD, AMR_CARD
from idp.signin.current import browser_id, sign_in
from idp.store.models import Account

# The challenge's key next to the browser id: the admin page's challenge is never the
# student page's (a token signed for one page is not accepted on the other).
ADMIN_CARD_TXN = "admin-login"


def admin_card_message(code: str) -> str:
    words = {
        "card_not_linked": _("このカードは、どの管理者のアカウントともつながっていません。"
                             "IDとパスワードと確認コードでサインインしてください。"),
        "not_admin": _("このカードでは管理ページに入れません(管理者のカードではありません)。"),
        "card_without_mfa": _("このカードは確認コードなしでつながれたので、管理者のサインインには"
                              "使えません。IDとパスワードと確認コードでサインインし、"
                              "カードをつなぎなおしてください。"),
    }
    return str(words[code])


def _refuse(code: str):
    response = jsonify(error=code, error_description=admin_card_message(code))
    response.status_code = 403
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/login/card/challenge")
def login_card_challenge():
    service = card_service()
    if not service.enabled:
        return card_unavailable_response()
    answer = issue_challenge(services().store, service, browser=browser_id(),
                             txn_id=ADMIN_CARD_TXN)
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


def _refusal(db, account: Account | None, binding_id: str | None) -> str | None:
    if account is None:
        return "card_not_linked"
    if account.role not in ADMIN_ROLES:
        return "not_admin"
    if not linking.card_stands_in_for_totp(db, account.id, binding_id):
        return "card_without_mfa"
    return None


@bp.post("/login/card/verify")
def login_card_verify():
    service = card_service()
    if not service.enabled:
        return card_unavailable_response()
    body = request.get_json(force=True, silent=True)
    try:
        # page="admin": this card check is a step; admin.login below is the sign-in (the
        # admin home counts that one only, idp.admin.dashboard).
        checked = check_token(body, browser=browser_id(), txn_id=ADMIN_CARD_TXN,
                              ip=client_ip(), page=ADMIN_PAGE)
    except CardError as exc:
        return card_error_response(exc.code)
    account = checked.account
    binding_id = checked.linked.binding_id if checked.linked else None
    with services().db.session() as db:
        refusal = _refusal(db, account, binding_id)
        audit(db, "admin.login", outcome="refused" if refusal else "ok",
              account_id=account.id if account else None,
              school_id=account.school_id if account else None, ip=client_ip(), mfa="card",
              **({"reason": refusal} if refusal else {}))
    if refusal is not None or account is None:
        return _refuse(refusal or "card_not_linked")
    sign_in(account, acr=ACR_CARD, amr=AMR_CARD, card_binding=binding_id)
    web_auth.mark_admin("card")
    response = jsonify(redirect=safe_next(request.args.get("next")))
    response.headers["Cache-Control"] = "no-store"
    return response
