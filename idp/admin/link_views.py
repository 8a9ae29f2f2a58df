"""School-assisted card linking pages under ``/admin/link-card`` (teachers and school
admins, password + TOTP). Views parse, call :mod:`idp.admin.assisted` and render; the card
bridge protocol is the student sign-in's (``card.js``) with endpoints of its own, bound to
the staff session and the chosen student."""

from __future__ import annotations

from typing import Any

from flask import jsonify, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from idp.accounts.roles import Actor
from idp.admin import accounts, assisted
from idp.admin.forms import ActionForm
from idp.admin.views import bp, client_ip, render
from idp.admin.web_auth import staff_required
from idp.auth.card import issue_challenge, verify_token
from idp.auth.card_views import STATUS, card_message, card_service
from idp.jpki.errors import CardError
from idp.services import services
from idp.signin.current import browser_id
from idp.store.models import Account


def link_message(code: str) -> str:
    """The page's words for a refusal: the student and the teacher read them together."""
    own = {
        "already_linked": _("このカードは、もうこの児童生徒のIDとつながっています。"
                            "カードでサインインできます。"),
        "account_unavailable": _("このアカウントはロック中か無効です。"
                                 "先に管理者に相談してください。"),
        "confirmation_expired": _("確認の時間が切れました。もう一度カードをのせてください。"),
    }
    return str(own.get(code) or card_message(code))


def _json_error(code: str):
    response = jsonify(error=code, error_description=link_message(code))
    response.status_code = {"already_linked": 409, "account_unavailable": 409}.get(
        code, STATUS.get(code, 400))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/link-card")
@staff_required
def link_roster(actor: Actor):
    svc = services()
    query = request.args.get("q", "")[:64]
    with svc.db.session() as db:
        school = accounts.school_by_code(db, request.args.get("school", "")[:64])
        rows = assisted.roster(db, actor, school_id=school.id if school else None,
                               query=query)
        linked = {r.id: len(assisted.active_cards(db, r.id)) for r in rows}
    done = request.args.get("done") == "1"
    return render("admin/link_roster.html", actor, rows=rows, linked=linked, q=query,
                   done=done, form=ActionForm())


@bp.get("/link-card/<account_id>")
@staff_required
def link_card_page(actor: Actor, account_id: str):
    service = card_service()
    with services().db.session() as db:
        student = _student(db, actor, account_id)
        if isinstance(student, str):
            return render("admin/link_roster.html", actor, 409, rows=[], linked={}, q="",
                           done=False, error=link_message(student))
        context = _student_context(db, student)
    return render("admin/link_card.html", actor, card_enabled=service.enabled,
                   challenge_url=url_for("admin.link_challenge", account_id=account_id),
                   verify_url=url_for("admin.link_verify", account_id=account_id),
                   **context)


@bp.post("/link-card/<account_id>/challenge")
@staff_required
def link_challenge(actor: Actor, account_id: str):
    service = card_service()
    if not service.enabled:
        return _json_error("revocation_unavailable")
    with services().db.session() as db:
        student = _student(db, actor, account_id)
    if isinstance(student, str):
        return _json_error(student)
    answer = issue_challenge(services().store, service, browser=browser_id(),
                             txn_id=assisted.challenge_txn(actor, account_id))
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/link-card/<account_id>/verify")
@staff_required
def link_verify(actor: Actor, account_id: str):
    svc, service = services(), card_service()
    if not service.enabled:
        return _json_error("revocation_unavailable")
    body = request.get_json(force=True, silent=True)
    with svc.db.session() as db:
        student = _student(db, actor, account_id)
        if isinstance(student, str):
            return _json_error(student)
        try:
            card = verify_token(svc.store, service, body, browser=browser_id(),
                                txn_id=assisted.challenge_txn(actor, account_id))
            identity = assisted.check_card(db, actor, student, card, ip=client_ip())
        except CardError as exc:  # the token or the certificate: audit it here
            assisted.refuse(db, actor, student, exc.code, exc.code, ip=client_ip())
            refusal = exc.code
        except assisted.LinkRefused as exc:  # audited by the service
            refusal = exc.code
        else:
            refusal = None
    if refusal is not None:
        return _json_error(refusal)
    assisted.remember(svc.store, browser=browser_id(), actor=actor, student_id=account_id,
                      card=identity)
    response = jsonify(redirect=url_for("admin.link_confirm", account_id=account_id))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/link-card/<account_id>/confirm", methods=["GET", "POST"])
@staff_required
def link_confirm(actor: Actor, account_id: str):
    svc = services()
    form = ActionForm()
    with svc.db.session() as db:
        student = _student(db, actor, account_id)
        if isinstance(student, str):
            return render("admin/link_roster.html", actor, 409, rows=[], linked={}, q="",
                           done=False, error=link_message(student))
        context = _student_context(db, student)
        if request.method == "GET":
            card = assisted.pending(svc.store, browser=browser_id(), actor=actor,
                                    student_id=account_id)
            if card is None:
                return _expired(actor, context)
            return render("admin/link_confirm.html", actor, card=card, form=form,
                          reinstating=assisted.is_reinstatement(db, student, card), **context)
        if not form.validate_on_submit():
            return render("admin/link_confirm.html", actor, 400, card=None, form=form,
                           **context)
        card = assisted.take_pending(svc.store, browser=browser_id(), actor=actor,
                                     student_id=account_id)
        if card is None:
            return _expired(actor, context)
        try:
            assisted.link(db, actor, account_id, card, ip=client_ip(), store=svc.store)
        except (CardError, assisted.LinkRefused) as exc:
            return render("admin/link_card.html", actor, 409, card_enabled=False,
                           error=link_message(exc.code), challenge_url="", verify_url="",
                           **context)
    return redirect(url_for("admin.link_roster", done="1"), 303)


def _expired(actor: Actor, context: dict[str, Any]):
    return render("admin/link_card.html", actor, 409, card_enabled=card_service().enabled,
                   error=link_message("confirmation_expired"),
                   challenge_url=url_for("admin.link_challenge",
                                         account_id=context["student"].id),
                   verify_url=url_for("admin.link_verify", account_id=context["student"].id),
                   **context)


def _student_context(db: Session, student: Account) -> dict[str, Any]:
    return {"student": student, "school": student.school,
            "cards": assisted.active_cards(db, student.id)}


def _student(db: Session, actor: Actor, account_id: str) -> Account | str:
    """The student, or the code of why their card cannot be linked now. Not allowed at
    all (another school, not a student) raises Forbidden: the blueprint answers 403."""
    try:
        return assisted.load_student(db, actor, account_id)
    except accounts.AdminInputError as exc:
        return exc.code
