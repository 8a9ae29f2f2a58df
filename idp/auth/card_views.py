"""Card sign-in pages and the two JSON endpoints the page's script calls (protocol
``jpki-auth:1``, docs/card-bridge-protocol.md). Views parse, call :mod:`idp.auth.card` and
:mod:`idp.accounts.cards`, and answer; the rules live there."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog
from flask import Blueprint, current_app, jsonify, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from idp.accounts import linking
from idp.accounts.cards import CardAccount, account_for_card
from idp.audit import audit
from idp.auth.card import (
    CardService,
    issue_challenge,
    page_challenge,
    pending_card_record,
    verify_token,
)
from idp.jpki.errors import CardError
from idp.jpki.verifier import VerifiedCard
from idp.metrics import count_sign_in
from idp.oidc.interaction import LoginTransaction
from idp.oidc.views import continue_authorization
from idp.services import services
from idp.signin.context import ACR_CARD, AMR_CARD
from idp.signin.current import browser_id, sign_in
from idp.store.models import Account

bp = Blueprint("card", __name__)
log = structlog.get_logger("idp.card")

# HTTP status of each refusal: the client's fault (400), refused (403), conflict (409), or our
# side cannot decide now (503).
STATUS = {
    "invalid_request": 400,
    "challenge_expired": 400,
    "challenge_not_found": 400,
    "signature_invalid": 403,
    "certificate_untrusted": 403,
    "certificate_expired": 403,
    "certificate_not_yet_valid": 403,
    "certificate_revoked": 403,
    "revocation_unavailable": 503,
    "card_not_linked": 403,
    "card_linked_elsewhere": 409,
    "card_replaced": 403,
}


def card_message(code: str) -> str:
    """What the page tells the student, in words a 10-year-old can follow."""
    messages = {
        "invalid_request": _("カードからの返事がうまくとどきませんでした。もう一度ためしてね。"),
        "challenge_expired": _("時間がたちすぎました。もう一度「はじめる」をおしてね。"),
        "challenge_not_found": _(
            "このサインインはもう使えません。もう一度「はじめる」をおしてね。"),
        "signature_invalid": _("カードをたしかめられませんでした。もう一度ためしてね。"),
        "certificate_untrusted": _(
            "このカードの<ruby>証明書<rt>しょうめいしょ</rt></ruby>はサインインに使えません。"
            "マイナンバーカードの「<ruby>利用者証明用電子証明書"
            "<rt>りようしゃしょうめいようでんししょうめいしょ</rt></ruby>」を使ってね。"),
        # The card page's own sentence for the same code (_card_messages.html).
        "certificate_expired": _(
            "カードの<ruby>電子証明書<rt>でんししょうめいしょ</rt></ruby>の<ruby>期限<rt>きげん"
            "</rt></ruby>が切れています。おうちの人と<ruby>市役所<rt>しやくしょ</rt></ruby>・"
            "<ruby>区役所<rt>くやくしょ</rt></ruby>で<ruby>更新<rt>こうしん</rt></ruby>してね。"),
        "certificate_not_yet_valid": _(
            "カードの<ruby>電子証明書<rt>でんししょうめいしょ</rt></ruby>はまだ使えません。"
            "しばらくしてからためしてね。"),
        "certificate_revoked": _(
            "このカードはサインインに使えなくなっています。おうちの人か先生に相談してね。"),
        "revocation_unavailable": _(
            "いまカードをたしかめられません。少しまってからためすか、IDとパスワードで"
            "サインインしてね。"),
        "card_not_linked": _(
            "このカードはまだあなたのIDとつながっていません。いちどだけ、学校のIDとパスワードで"
            "サインインしてね。"),
        "card_linked_elsewhere": _(
            "このカードは、ほかの人のIDとつながっています。先生に相談してね。"),
        "card_replaced": _(
            "これは前のカードです。新しいカードにかわったので、もう使えません。"
            "新しいカードでサインインしてね。"),
    }
    return messages.get(code, messages["invalid_request"])


def card_service() -> CardService:
    return services().card


def card_error_response(code: str, **extra: Any):
    response = jsonify(error=code, error_description=card_message(code), **extra)
    response.status_code = STATUS.get(code, 400)
    response.headers["Cache-Control"] = "no-store"
    return response


def card_unavailable_response():
    response = jsonify(error="temporarily_unavailable",
                       error_description=_("いまはカードでサインインできません。"
                                           "IDとパスワードでサインインしてね。"))
    response.status_code = 503
    return response


@bp.errorhandler(CSRFError)
def csrf_refused(exc: CSRFError):
    if request.path.startswith("/login/card/"):
        description = _("ページが古くなりました。ページを読みこみなおしてね。")
        return jsonify(error="invalid_request", error_description=description), 400
    return render_template("error.html", error="csrf", description=None, csrf_expired=True), 400


def _client_ip() -> str:
    return request.remote_addr or "unknown"


def _home_url() -> str:
    return url_for("account.home") if "account.home" in current_app.view_functions else "/"


@bp.get("/login/card")
def card_page():
    service = card_service()
    txn = LoginTransaction.load(request.args.get("txn"))
    txn_id = txn.id if txn else None
    # The page brings its first challenge, so the first try needs no request for one: a
    # challenge of this browser and transaction, in a page no one else can read (same
    # origin) and no cache keeps (no-store). The script uses it once, while enough of it
    # is left; a later try asks the endpoint. An expired transaction gets none (its
    # sign-in could not finish), nor does a HEAD, which shows nothing.
    first_challenge = None
    if service.enabled and request.method != "HEAD" and \
            (txn is not None or not request.args.get("txn")):
        first_challenge = page_challenge(services().store, service, browser=browser_id(),
                                         txn_id=txn_id, app=txn.client_name if txn else None)
    return render_template(
        "card_login.html", txn=txn, card_required=bool(txn and txn.card_required),
        linked=request.args.get("reason") == "linked",
        card_enabled=service.enabled, revocation_disabled=service.revocation_disabled,
        first_challenge=first_challenge,
        challenge_url=url_for("card.challenge", txn=txn_id),
        verify_url=url_for("card.verify", txn=txn_id),
        password_url=url_for("auth.login", txn=txn_id))


@bp.post("/login/card/challenge")
def challenge():
    service = card_service()
    if not service.enabled:
        return card_unavailable_response()
    txn_id = request.args.get("txn")
    txn = LoginTransaction.load(txn_id)
    if txn_id and txn is None:
        response = jsonify(error="invalid_request", error_description=_(
            "時間がたちすぎました。アプリにもどって、もう一度はじめからやってね。"))
        return response, 400
    # Without a transaction the sign-in is to the provider's own pages: no app to name, the
    # bridge names the origin.
    answer = issue_challenge(services().store, service, browser=browser_id(),
                             txn_id=txn.id if txn else None,
                             app=txn.client_name if txn else None)
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/login/card/verify")
def verify():
    service = card_service()
    if not service.enabled:
        return card_unavailable_response()
    txn = LoginTransaction.load(request.args.get("txn"))
    body = request.get_json(force=True, silent=True)
    # The card's audit events go to the store with the code (or the transaction's
    # "signed in"): one round trip. The challenge is still taken at once, inside, and the
    # code's batch is sent before the answer is made (idp.oidc.views._answer).
    with services().store.batched():
        try:
            checked = check_token(body, browser=browser_id(),
                                  txn_id=txn.id if txn else None, ip=_client_ip())
        except CardError as exc:
            return card_error_response(exc.code)
        return finish_card_sign_in(checked.linked, pending_card_record(checked.card), txn)


# Shared with the tablet pairing (idp.auth.pairing_views): the same check, the same sign-in.
@dataclass(frozen=True)
class CardCheck:
    card: VerifiedCard
    linked: CardAccount | None  # None: the card is linked to nothing yet

    @property
    def account(self) -> Account | None:
        return self.linked.account if self.linked else None


def check_token(body: Any, *, browser: str, txn_id: str | None, ip: str,
                method: str = "card", page: str | None = None) -> CardCheck:
    """Verify a bridge token against the challenge issued to ``browser``/``txn_id`` and find
    the card's account and binding. Refusals are audited and raised as :class:`CardError`;
    every outcome is counted under ``method`` (``pairing`` for the tablet's sign-in).
    ``page`` (``"admin"``) goes into the ``login.card`` events of a card check that is a
    step of another sign-in, which records the sign-in itself."""
    svc = services()
    tag = {"page": page} if page else {}
    try:
        card = verify_token(svc.store, card_service(), body, browser=browser, txn_id=txn_id)
    except CardError as exc:
        count_sign_in(method, exc.code)
        with svc.db.session() as db:
            audit(db, "login.card", outcome="refused", ip=ip, reason=exc.code,
                  detail=exc.message[:200], bridge=_bridge_name(body), **tag)
        raise
    try:
        linked = account_for_card(svc.db, card, ip=ip, accounts=svc.accounts,
                                  events=svc.events, **tag)
    except CardError as exc:
        count_sign_in(method, exc.code)
        raise
    count_sign_in(method, "card_not_linked" if linked is None else None)
    return CardCheck(card, linked)


def finish_card_sign_in(linked: CardAccount | None, pending_card: dict[str, Any],
                        txn: LoginTransaction | None, **extra: Any):
    """Sign this browser in at the card level, or (first use) remember the verified card
    for the password page, which links it. Answers the JSON the card page's script follows;
    ``extra`` fields are added to it."""
    txn_id = txn.id if txn else None
    if linked is None:
        # Linked to nothing yet: kept for this login transaction only, for the password page
        # carrying its id (idp.accounts.linking).
        pending = linking.new_pending(pending_card, txn_id=txn_id, now=time.time())
        session[linking.SESSION_KEY] = pending
        return card_error_response("card_not_linked", redirect=url_for(
            "auth.login", txn=txn_id, card=pending["id"]), **extra)
    sign_in(linked.account, acr=ACR_CARD, amr=AMR_CARD, card_binding=linked.binding_id)
    session.pop(linking.SESSION_KEY, None)
    if txn is not None:
        target = continue_authorization(txn, authenticated_at=time.time())
    else:
        target = _home_url()
    response = jsonify(redirect=target, **extra)
    response.headers["Cache-Control"] = "no-store"
    return response


def _bridge_name(body: Any) -> str | None:
    bridge = body.get("bridge") if isinstance(body, dict) else None
    return bridge[:100] if isinstance(bridge, str) else None
