"""Card sign-in from a tablet: the pairing endpoints (rules in :mod:`idp.auth.pairing`).

- ``POST /login/card/pair`` (the tablet's card page, CSRF) → ``{code, expires_in, qr_svg,
  status_url}``;
- ``GET /login/card/pair/<code>`` (``card-bridge pair`` on a PC with a reader; no cookies)
  → ``{challenge, origin, client_name, provider_host, school_name, started_at,
  expires_in}`` (what the bridge shows before the PIN; ``started_at`` in Japan time); a
  browser opening the same URL (the QR code) gets a page saying what to do with the code;
- ``POST /login/card/pair/<code>`` (the bridge, with its token; no CSRF token: the code is the
  capability) → verified exactly like ``/login/card/verify`` and recorded for the tablet;
- ``GET /login/card/pair/<code>/status`` (the tablet's script, only from the browser that
  asked for the code) → ``{state: waiting|done|error, redirect?, error?}``; on ``done`` this
  browser is signed in at the card level and continues its authorization request.

The card's challenge is issued to the pairing (``browser="pair:<id>"``) inside the tablet's
login transaction, so the token can only complete this one pairing.
"""

from __future__ import annotations

from typing import Any

import structlog
from flask import Blueprint, jsonify, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from idp.accounts.cards import CardAccount
from idp.auth.card import issue_challenge, pending_card_record
from idp.auth.card_views import (
    card_error_response,
    card_message,
    card_service,
    card_unavailable_response,
    check_token,
    finish_card_sign_in,
)
from idp.auth.pairing import (
    CREATE_WINDOW,
    DONE,
    WAITING,
    PairingRefused,
    Pairings,
    display_code,
    normalize_code,
)
from idp.extensions import csrf
from idp.jpki.errors import CardError
from idp.oidc.interaction import LoginTransaction
from idp.qr import qr_svg
from idp.services import services
from idp.signin.current import browser_id
from idp.store.models import Account

bp = Blueprint("card_pair", __name__)
log = structlog.get_logger("idp.card.pair")
SESSION_KEY = "card_pairing"

# Status of each pairing refusal, and what the page (or the bridge's terminal) says.
REFUSAL_STATUS = {"pairing_not_found": 404, "pairing_used": 409, "pairing_expired": 410,
                  "slow_down": 429}


def _refusal_message(code: str) -> str:
    messages = {
        "pairing_not_found": _(
            "その番号は見つかりません。タブレットに出ている番号をたしかめてね。"),
        "pairing_used": _("その番号はもう使われました。タブレットで新しい番号を出してね。"),
        "pairing_expired": _("番号の時間（2分）がすぎました。タブレットで新しい番号を出してね。"),
        "slow_down": _("まちがいが多すぎます。少しまってから、もう一度ためしてね。"),
    }
    return messages.get(code, messages["pairing_not_found"])


def _pairings() -> Pairings:
    svc = services()
    return Pairings(svc.store, svc.settings.secret_key, throttle=svc.throttle)


def _client_ip() -> str:
    return request.remote_addr or "unknown"


def _json(body: dict[str, Any], status: int = 200):
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(exc: PairingRefused):
    response = _json({"error": exc.code, "error_description": _refusal_message(exc.code)},
                     REFUSAL_STATUS.get(exc.code, 400))
    if exc.code == "slow_down":
        response.headers["Retry-After"] = str(max(1, exc.retry_after))
    return response


@bp.errorhandler(CSRFError)
def csrf_refused(exc: CSRFError):
    description = _("ページが古くなりました。ページを読みこみなおしてね。")
    return _json({"error": "invalid_request", "error_description": description}, 400)


@bp.post("/login/card/pair")
def create():
    service = card_service()
    if not service.enabled:
        return card_unavailable_response()
    txn_id = request.args.get("txn")
    txn = LoginTransaction.load(txn_id)
    if txn_id and txn is None:
        return _json({"error": "invalid_request", "error_description": _(
            "時間がたちすぎました。アプリにもどって、もう一度はじめからやってね。")}, 400)
    pairings = _pairings()
    browser = browser_id()
    if not pairings.creation_allowed(browser=browser, ip=_client_ip()):
        return _refused(PairingRefused("slow_down", CREATE_WINDOW))
    code, record = pairings.create(
        browser=browser, txn_id=txn.id if txn else None,
        client_name=(txn.client_name if txn else "") or _("マイナゲート"),
        replaces=session.get(SESSION_KEY), started=txn.started if txn else None)
    session[SESSION_KEY] = pairings.key_of(code)
    pair_url = services().settings.issuer + url_for("card_pair.bridge_request", code=code)
    return _json({"code": display_code(code), "expires_in": pairings.remaining(record),
                  "pair_url": pair_url, "qr_svg": qr_svg(pair_url, scale=5, border=2),
                  "status_url": url_for("card_pair.status", code=code)})


def _wants_page() -> bool:
    """A person who scanned the QR code, not the bridge (which asks for JSON)."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes["text/html"] > \
        request.accept_mimetypes["application/json"]


@bp.get("/login/card/pair/<code>")
def bridge_request(code: str):
    if _wants_page():
        normalized = normalize_code(code)
        return render_template("card_pair.html",
                               code=display_code(normalized) if normalized else None,
                               issuer=services().settings.issuer)
    service = card_service()
    if not service.enabled:
        return card_unavailable_response()
    try:
        code, record = _pairings().for_bridge(code, ip=_client_ip())
    except PairingRefused as exc:
        return _refused(exc)
    answer = issue_challenge(services().store, service, browser="pair:" + record["id"],
                             txn_id=record["txn"])
    pairings = _pairings()
    return _json({"challenge": answer["challenge"], "origin": answer["origin"],
                  **pairings.bridge_facts(record, services().settings.issuer),
                  "expires_in": pairings.remaining(record)})


# The bridge on another computer has no cookie and no form token: the code is the
# capability, and its token is bound to the pairing's own challenge.
@csrf.exempt
@bp.post("/login/card/pair/<code>")
def complete(code: str):
    if not card_service().enabled:
        return card_unavailable_response()
    body = request.get_json(force=True, silent=True)
    pairings = _pairings()
    try:
        code, record = pairings.claim(code, ip=_client_ip())
    except PairingRefused as exc:
        return _refused(exc)
    try:
        return _complete_claimed(pairings, code, record, body)
    except Exception:
        # Not decided (the database or the store away, at the check or while writing its
        # result): the claim goes back, so the same code may be tried again.
        pairings.release(code)
        raise


def _complete_claimed(pairings: Pairings, code: str, record: dict[str, Any], body: Any):
    try:
        checked = check_token(body, browser="pair:" + record["id"], txn_id=record["txn"],
                              ip=_client_ip(), method="pairing")
    except CardError as exc:
        pairings.finish(code, record, error=exc.code)
        return card_error_response(exc.code)
    account = checked.account
    if account is None:
        pairings.finish(code, record, error="card_not_linked",
                        pending_card=pending_card_record(checked.card))
        return _json({"state": "error", "error": "card_not_linked",
                      "error_description": card_message("card_not_linked")}, 403)
    pairings.finish(code, record, account_id=account.id)
    log.info("card_pairing_done", pairing=record["id"])
    return _json({"state": DONE, "message": _(
        "サインインできました。タブレットにもどってね。")})


@bp.get("/login/card/pair/<code>/status")
def status(code: str):
    pairings = _pairings()
    try:
        record = pairings.for_browser(code, browser=browser_id(), ip=_client_ip())
    except PairingRefused as exc:
        return _refused(exc)
    if record["state"] == WAITING:
        return _json({"state": WAITING, "expires_in": pairings.remaining(record)})
    pairings.forget(code)  # the result is read once
    session.pop(SESSION_KEY, None)
    error = record.get("error")
    txn = LoginTransaction.load(record["txn"]) if record.get("txn") else None
    if record.get("txn") and txn is None:
        error = "txn_expired"
    if error == "card_not_linked" and record.get("pending_card"):
        return finish_card_sign_in(None, record["pending_card"], txn, state="error")
    if error:
        description = (_("時間がたちすぎました。アプリにもどって、もう一度はじめからやってね。")
                       if error == "txn_expired" else
                       _refusal_message(error) if error in REFUSAL_STATUS else card_message(error))
        return _json({"state": "error", "error": error, "error_description": description})
    with services().db.session() as db:
        account = db.get(Account, record["account_id"])
        usable = account is not None and account.active and not account.locked
    if not usable:
        return _json({"state": "error", "error": "card_not_linked",
                      "error_description": card_message("card_not_linked")})
    # The tablet signs in with the account alone: the binding stays with the bridge's
    # sign-in (the admin rule needs it, and the admin area has no tablet pairing).
    return finish_card_sign_in(CardAccount(account, None), {}, txn, state=DONE)
