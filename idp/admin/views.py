"""Admin pages under ``/admin``. Views parse, call the admin modules and render."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from idp.accounts import codes
from idp.accounts.cards import card_status
from idp.accounts.roles import (
    ACCOUNT_ROLES,
    ADMIN_ROLES,
    STAFF_ROLES,
    Action,
    Actor,
    Forbidden,
    may,
    may_grant_role,
    require,
)
from idp.admin import (
    accounts,
    audit_log,
    clients_admin,
    credentials,
    roster_service,
    totp,
    web_auth,
)
from idp.admin.forms import (
    AccountForm,
    ActionForm,
    AdminLoginForm,
    ApiTokenForm,
    ClientForm,
    EnrolCodeForm,
    IatForm,
    RetentionForm,
    RosterApplyForm,
    RosterUploadForm,
    SchoolForm,
    TotpForm,
    UnlinkCardsForm,
)
from idp.admin.messages import describe
from idp.admin.roster import RosterFileError
from idp.admin.sheets import first_password_pdf
from idp.admin.web_auth import admin_required
from idp.audit import audit
from idp.auth.views import admin_link_url
from idp.oidc.clients import ClientMetadataError
from idp.oidc.registration_core import register_client
from idp.services import services
from idp.signin import device_cookie
from idp.signin.context import ACR_PASSWORD
from idp.signin.current import sign_in
from idp.signin.passwords import verify_password
from idp.signin.throttle import audit_guessing
from idp.store.admin_models import AdminApiToken, InitialAccessToken
from idp.store.models import Account, Client, School, utcnow

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.context_processor
def _admin_words() -> dict[str, Any]:
    return {"describe": describe}


PREVIEW_TTL = 30 * 60
MAX_ROSTER_BYTES = 900 * 1024


def client_ip() -> str:
    return request.remote_addr or "unknown"


def _show_once(label: str, value: str) -> None:
    """A secret for the very next page only (it is popped when rendered)."""
    session["admin_shown"] = {"label": label, "value": value}


def _show_also(label: str, value: str) -> None:
    """A second secret for the same next page (a new staff account's enrolment code)."""
    session["admin_shown_also"] = {"label": label, "value": value}


def _render(template: str, actor: Actor | None, status: int = 200, **context: Any):
    shown = session.pop("admin_shown", None)
    shown_also = session.pop("admin_shown_also", None)
    return render_template(template, actor=actor, shown=shown, shown_also=shown_also,
                           may=may, Action=Action, STAFF_ROLES=STAFF_ROLES,
                           **context), status


def _safe_next(raw: str | None) -> str:
    if raw and raw.startswith("/admin") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return url_for("admin.home")


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden):
    return render_template("error.html", error="403", http_error=True,
                           description=_("この操作をする権限がありません。")), 403


@bp.errorhandler(accounts.NotFound)
def _not_found(exc: accounts.NotFound):
    return render_template("error.html", error="404", http_error=True,
                           description=_("見つかりません。")), 404


# ----------------------------------------------------------------------------- sign-in
@bp.route("/login", methods=["GET", "POST"])
def login():
    svc = services()
    form = AdminLoginForm()
    reason = request.args.get("reason")
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if request.method == "GET" or not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return _render("admin/login.html", None, status, form=form, reason=reason)
    school_code, login_id = form.school.data.strip(), form.login_id.data.strip()
    throttle_key = f"admin:{school_code}:{login_id.lower()}"
    with svc.db.session() as db:
        account = db.scalar(select(Account).join(School).where(
            School.code == school_code, Account.login_id == login_id))
        attempt = svc.throttle.begin(throttle_key, client_ip(), device=device_cookie.current(),
                                     account_id=account.id if account else None)
        if not attempt.allowed:
            audit_guessing(db, attempt, ip=client_ip(), step="admin")
            return _admin_slow_down(form, attempt.wait)
        ok = verify_password(account.password_hash if account else None, form.password.data)
        if not ok or not credentials.is_staff_account(account):
            failure = attempt.failed()
            audit(db, "admin.login", outcome="refused", ip=client_ip(),
                  account_id=account.id if account else None,
                  reason="bad_credentials" if not ok else "not_admin")
            audit_guessing(db, attempt, ip=client_ip(), step="admin")
            db.commit()
            if failure.wait:
                return _admin_slow_down(form, failure.wait)
            return _render("admin/login.html", None, 401, form=form,
                           error=_("IDかパスワードがちがうか、管理者ではありません。"))
        device = attempt.succeeded(device_cookie.current())
        session[web_auth.PENDING_KEY] = {"account_id": account.id, "at": time.time(),
                                         "next": _safe_next(form.next.data)}
    return device_cookie.attach(redirect(url_for("admin.totp_step"), 303), device)


def _admin_slow_down(form: AdminLoginForm, seconds: int):
    return _render("admin/login.html", None, 429, form=form,
                   error=_("%(seconds)s秒まってからもう一度ためしてください。", seconds=seconds))


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
        return _safe_next(target)
    if target and target.startswith("/admin/link-card"):
        return _safe_next(target)
    return url_for("admin.link_roster")


@bp.route("/totp", methods=["GET", "POST"])
def totp_step():
    svc = services()
    form = TotpForm()
    with svc.db.session() as db:
        account = _pending_account(db)
        if account is None:
            return redirect(url_for("admin.login", reason="login"), 303)
        enrolment = totp.enrolment(db, account.id)
        enrolling = enrolment.confirmed_at is None
        # The first enrolment shows the secret only after a one-time enrolment code.
        shown = enrolling and _enrolment_opened(account.id)
        context = {"form": form, "enrolling": enrolling, "enrol_form": EnrolCodeForm(),
                   "opened": shown, "secret": enrolment.secret if shown else None,
                   "uri": totp.provisioning_uri(enrolment, f"{account.school.code}/"
                                                           f"{account.login_id}")
                   if shown else None}
        if request.method == "GET" or not form.validate_on_submit():
            return _render("admin/totp.html", None, 400 if request.method == "POST" else 200,
                           **context)
        if enrolling and not shown:
            return _render("admin/totp.html", None, 403, **context,
                           error=_("先に、登録コードを入れてください。"))
        attempt = svc.throttle.begin(f"admin-totp:{account.id}", client_ip(),
                                     account_id=account.id, device=device_cookie.current())
        if not attempt.allowed or not totp.verify(enrolment, form.code.data):
            if attempt.allowed:
                attempt.failed()
            audit(db, "admin.totp", outcome="refused", account_id=account.id, ip=client_ip(),
                  reason="bad_code" if attempt.allowed else "slow_down")
            audit_guessing(db, attempt, ip=client_ip(), step="totp")
            db.commit()
            context["error"] = _("確認コードがちがいます。アプリの新しいコードを入れてください。")
            return _render("admin/totp.html", None, 401, **context)
        device = attempt.succeeded(device_cookie.current())
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
        account = _pending_account(db)
        if account is None:
            return redirect(url_for("admin.login", reason="login"), 303)
        enrolment = totp.enrolment(db, account.id)
        if enrolment.confirmed_at is not None or _enrolment_opened(account.id):
            return redirect(url_for("admin.totp_step"), 303)
        context = {"form": TotpForm(), "enrol_form": form, "enrolling": True, "opened": False,
                   "secret": None, "uri": None}
        if not form.validate_on_submit():
            return _render("admin/totp.html", None, 400, **context)
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
            return _render("admin/totp.html", None, 401, **context, error=_(
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
        from idp.signin.current import sign_out

        sign_out()
    return redirect(url_for("admin.login"), 303)


# ----------------------------------------------------------------------------- home
@bp.get("/")
@admin_required
def home(actor: Actor):
    with services().db.session() as db:
        me = db.get(Account, actor.account_id)
        school = me.school.name
    return _render("admin/home.html", actor, school=school, form=ActionForm())


# ----------------------------------------------------------------------------- clients
def _spec_from_form(form: ClientForm):
    def lines(text: str | None) -> list[str]:
        return [line.strip() for line in (text or "").splitlines() if line.strip()]

    data: dict[str, Any] = {
        "client_name": form.client_name.data,
        "redirect_uris": lines(form.redirect_uris.data),
        "post_logout_redirect_uris": lines(form.post_logout_redirect_uris.data),
        "sector_identifier_uri": form.sector_identifier_uri.data or None,
        "token_endpoint_auth_method": form.token_endpoint_auth_method.data,
        "scopes": list(form.scopes.data or []) or ["openid"],
        "jwks_uri": form.jwks_uri.data or None,
        "id_token_signed_response_alg": form.id_token_signed_response_alg.data,
        "required_acr": form.required_acr.data or None,
        "logo_uri": form.logo_uri.data or None,
        "contacts": [c.strip() for c in (form.contacts.data or "").split(",") if c.strip()],
        "access_token_lifetime": form.access_token_lifetime.data,
        "refresh_token_lifetime": form.refresh_token_lifetime.data,
    }
    if form.jwks.data and form.jwks.data.strip():
        try:
            data["jwks"] = json.loads(form.jwks.data)
        except ValueError as exc:
            raise ClientMetadataError("jwks is not JSON") from exc
    return clients_admin.spec_from_metadata(data)


def _fill_client_form(form: ClientForm, row: Client) -> None:
    form.client_name.data = row.name
    form.redirect_uris.data = "\n".join(row.redirect_uris or [])
    form.post_logout_redirect_uris.data = "\n".join(row.post_logout_redirect_uris or [])
    form.sector_identifier_uri.data = row.sector_identifier_uri or ""
    form.token_endpoint_auth_method.data = row.token_endpoint_auth_method
    form.scopes.data = list(row.scopes or [])
    form.jwks_uri.data = row.jwks_uri or ""
    form.jwks.data = json.dumps(row.jwks) if row.jwks else ""
    form.id_token_signed_response_alg.data = row.id_token_signed_response_alg
    form.required_acr.data = row.required_acr or ""
    form.logo_uri.data = row.logo_uri or ""
    form.contacts.data = ", ".join(row.contacts or [])
    form.access_token_lifetime.data = row.access_token_lifetime
    form.refresh_token_lifetime.data = row.refresh_token_lifetime


@bp.get("/clients")
@admin_required
def clients(actor: Actor):
    require(actor, Action.CLIENTS)
    with services().db.session() as db:
        rows = list(db.scalars(select(Client).order_by(Client.created_at)))
    return _render("admin/clients.html", actor, clients=rows)


@bp.route("/clients/new", methods=["GET", "POST"])
@admin_required
def client_new(actor: Actor):
    require(actor, Action.CLIENTS)
    form = ClientForm()
    if request.method == "GET" or not form.validate_on_submit():
        return _render("admin/client_form.html", actor,
                       400 if request.method == "POST" else 200, form=form, row=None)
    try:
        row, secret = register_client(services(), _spec_from_form(form),
                                      actor=actor.account_id)
    except ClientMetadataError as exc:
        return _render("admin/client_form.html", actor, 400, form=form, row=None,
                       error=describe(exc.code, str(exc)))
    if secret:
        _show_once("client_secret", secret)
    return redirect(url_for("admin.client_detail", client_id=row.client_id), 303)


def _load_client(db, client_id: str) -> Client:
    row = db.get(Client, client_id) if len(client_id) <= 64 else None
    if row is None:
        raise accounts.NotFound("no such client")
    return row


@bp.route("/clients/<client_id>", methods=["GET", "POST"])
@admin_required
def client_detail(actor: Actor, client_id: str):
    require(actor, Action.CLIENTS)
    svc = services()
    form = ClientForm()
    with svc.db.session() as db:
        row = _load_client(db, client_id)
        if request.method == "GET":
            _fill_client_form(form, row)
        error = None
        if request.method == "POST" and form.validate_on_submit():
            try:
                secret = clients_admin.update_client(svc, db, row, _spec_from_form(form),
                                                     actor=actor.account_id)
            except ClientMetadataError as exc:
                db.rollback()
                error = describe(exc.code, str(exc))
            else:
                db.commit()
                if secret:
                    _show_once("client_secret", secret)
                return redirect(url_for("admin.client_detail", client_id=client_id), 303)
        status = 400 if request.method == "POST" else 200
        return _render("admin/client_form.html", actor, status, form=form, row=row,
                       error=error, action_form=ActionForm())


@bp.post("/clients/<client_id>/<operation>")
@admin_required
def client_action(actor: Actor, client_id: str, operation: str):
    require(actor, Action.CLIENTS)
    if operation not in ("enable", "disable", "rotate", "delete"):
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    with services().db.session() as db:
        row = _load_client(db, client_id)
        if operation in ("enable", "disable"):
            clients_admin.set_enabled(db, row, operation == "enable", actor=actor.account_id)
        elif operation == "rotate":
            try:
                _show_once("client_secret",
                           clients_admin.rotate(db, row, actor=actor.account_id))
            except ClientMetadataError:
                abort(400)
        else:
            clients_admin.delete_client(db, row, actor=actor.account_id)
            return redirect(url_for("admin.clients"), 303)
    return redirect(url_for("admin.client_detail", client_id=client_id), 303)


# ----------------------------------------------------------------------------- IATs
@bp.route("/initial-access-tokens", methods=["GET", "POST"])
@admin_required
def iats(actor: Actor):
    require(actor, Action.INITIAL_ACCESS_TOKENS)
    form = IatForm()
    with services().db.session() as db:
        if request.method == "POST" and form.validate_on_submit():
            try:
                row, value = credentials.issue_initial_access_token(
                    db, actor=actor, label=form.label.data or "", days=form.days.data,
                    max_uses=form.max_uses.data, allowed_scopes=form.allowed_scopes.data)
            except credentials.CredentialError as exc:
                db.rollback()
                rows = list(db.scalars(select(InitialAccessToken)))
                return _render("admin/iats.html", actor, 400, form=form, rows=rows,
                               error=describe(exc.code), action_form=ActionForm())
            audit(db, "iat.issued", actor=actor.account_id, iat_id=row.id)
            db.commit()
            _show_once("initial_access_token", value)
            return redirect(url_for("admin.iats"), 303)
        rows = list(db.scalars(select(InitialAccessToken)
                               .order_by(InitialAccessToken.created_at.desc())))
    return _render("admin/iats.html", actor, 400 if request.method == "POST" else 200,
                   form=form, rows=rows, action_form=ActionForm())


@bp.post("/initial-access-tokens/<iat_id>/revoke")
@admin_required
def iat_revoke(actor: Actor, iat_id: str):
    require(actor, Action.INITIAL_ACCESS_TOKENS)
    if not ActionForm().validate_on_submit():
        abort(400)
    with services().db.session() as db:
        row = db.get(InitialAccessToken, iat_id) if len(iat_id) <= 32 else None
        if row is None:
            abort(404)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            audit(db, "iat.revoked", actor=actor.account_id, iat_id=row.id)
    return redirect(url_for("admin.iats"), 303)


# ----------------------------------------------------------------------------- schools
@bp.route("/schools", methods=["GET", "POST"])
@admin_required
def schools(actor: Actor):
    form = SchoolForm()
    error = None
    with services().db.session() as db:
        if request.method == "POST" and form.validate_on_submit():
            try:
                accounts.create_school(db, actor, form.code.data, form.name.data)
            except accounts.AdminInputError as exc:
                db.rollback()
                error = describe(exc.code)
            else:
                db.commit()
                return redirect(url_for("admin.schools"), 303)
        rows = accounts.list_schools(db, actor)
    status = 400 if request.method == "POST" else 200
    return _render("admin/schools.html", actor, status, form=form, rows=rows, error=error)


# ----------------------------------------------------------------------------- accounts
@bp.get("/accounts")
@admin_required
def account_list(actor: Actor):
    with services().db.session() as db:
        school_code = request.args.get("school", "")[:64]
        school = accounts.school_by_code(db, school_code)
        page = request.args.get("page", "1")
        page_no = int(page) if page.isdigit() and 0 < int(page) < 10**5 else 1
        rows, total = accounts.list_accounts(
            db, actor, school_id=school.id if school else None,
            query=request.args.get("q", "")[:64], limit=100, offset=(page_no - 1) * 100)
        school_rows = accounts.list_schools(db, actor)
    return _render("admin/accounts.html", actor, rows=rows, total=total, page=page_no,
                   schools=school_rows, school_code=school_code, q=request.args.get("q", ""))


@bp.route("/accounts/new", methods=["GET", "POST"])
@admin_required
def account_new(actor: Actor):
    form = AccountForm()
    with services().db.session() as db:
        form.school.choices = [SelectChoice(s.id, f"{s.code} {s.name}")
                               for s in accounts.list_schools(db, actor)]
    form.role.choices = [r for r in ACCOUNT_ROLES if may_grant_role(actor, r)]
    if request.method == "GET" or not form.validate_on_submit():
        return _render("admin/account_new.html", actor,
                       400 if request.method == "POST" else 200, form=form)
    with services().db.session() as db:
        try:
            row, code = accounts.create_account(
                db, actor, school_id=form.school.data, login_id=form.login_id.data,
                display_name=form.display_name.data or "", role=form.role.data,
                grade=form.grade.data or "", class_name=form.class_name.data or "")
        except accounts.AdminInputError as exc:
            db.rollback()
            return _render("admin/account_new.html", actor, 400, form=form,
                           error=describe(exc.code))
        account_id = row.id
        enrol = accounts.issue_enrolment_code(db, row, actor_id=actor.account_id) \
            if row.role in STAFF_ROLES else None
    _show_once("reset_code", code)
    if enrol:
        _show_also("enrolment_code", enrol)
    return redirect(url_for("admin.account_detail", account_id=account_id), 303)


@bp.get("/accounts/<account_id>")
@admin_required
def account_detail(actor: Actor, account_id: str):
    with services().db.session() as db:
        row = accounts.load_account(db, actor, account_id)
        cards = accounts.account_cards(db, row.id)
    return _render("admin/account.html", actor, row=row, cards=cards,
                   card_status=card_status, form=ActionForm(),
                   guessing=services().throttle.guessing_flag(row.id))


@bp.post("/accounts/<account_id>/<operation>")
@admin_required
def account_action(actor: Actor, account_id: str, operation: str):
    if operation not in ("lock", "unlock", "end-sessions", "reset-code", "enrol-code"):
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    svc = services()
    with svc.db.session() as db:
        row = accounts.load_account(db, actor, account_id)
        try:
            if operation in ("lock", "unlock"):
                accounts.set_locked(svc, db, actor, row, operation == "lock")
            elif operation == "end-sessions":
                accounts.end_sessions(svc, db, actor, row)
            elif operation == "enrol-code":
                _show_once("enrolment_code", accounts.issue_enrolment_code(
                    db, row, actor_id=actor.account_id))
            else:
                _show_once("reset_code", accounts.issue_reset_code(db, actor, row))
        except accounts.AdminInputError:
            abort(400)
    if operation == "reset-code":  # the code, with the cards that still sign in
        return redirect(url_for("admin.account_after_reset", account_id=account_id), 303)
    return redirect(url_for("admin.account_detail", account_id=account_id), 303)


def _unlink_form(db, row: Account) -> UnlinkCardsForm:
    form = UnlinkCardsForm()
    form.card_ids.choices = [
        SelectChoice(c.id, f"{c.serial} ({c.not_after:%Y-%m-%d})")
        for c in accounts.account_cards(db, row.id) if card_status(c) == "active"]
    return form


@bp.get("/accounts/<account_id>/reset")
@admin_required
def account_after_reset(actor: Actor, account_id: str):
    """After a reset code: the account's linked cards, to unlink any that should no longer
    sign in (a lost card, a card that is not the owner's) on the same page."""
    with services().db.session() as db:
        row = accounts.load_account(db, actor, account_id, Action.CARDS)
        form = _unlink_form(db, row)
    return _render("admin/reset_done.html", actor, row=row, form=form)


@bp.post("/accounts/<account_id>/unlink-cards")
@admin_required
def account_unlink_cards(actor: Actor, account_id: str):
    svc = services()
    with svc.db.session() as db:
        row = accounts.load_account(db, actor, account_id, Action.CARDS)
        form = _unlink_form(db, row)
        if not form.validate_on_submit():  # none chosen, or a card not this account's
            return _render("admin/reset_done.html", actor, 400, row=row, form=form,
                           error=_("つながりを解除するカードを選んでください。"))
        for card_id in form.card_ids.data:
            accounts.revoke_card(svc, db, actor, card_id)  # the existing revoke, audited
    return redirect(url_for("admin.account_detail", account_id=account_id), 303)


@bp.post("/cards/<card_id>/revoke")
@admin_required
def card_revoke(actor: Actor, card_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    svc = services()
    with svc.db.session() as db:
        card = accounts.revoke_card(svc, db, actor, card_id)
        account_id = card.account_id
    return redirect(url_for("admin.account_detail", account_id=account_id), 303)


# ----------------------------------------------------------------------------- roster
@bp.route("/roster", methods=["GET", "POST"])
@admin_required
def roster(actor: Actor):
    if not may(actor, Action.ROSTER, actor.school_id):
        raise Forbidden("roster")
    form = RosterUploadForm()
    if request.method == "GET" or not form.validate_on_submit():
        return _render("admin/roster.html", actor, 400 if request.method == "POST" else 200,
                       form=form)
    data = form.file.data.read(MAX_ROSTER_BYTES + 1)
    if len(data) > MAX_ROSTER_BYTES:
        return _render("admin/roster.html", actor, 400, form=form,
                       error=_("ファイルが大きすぎます(900KBまで)。"))
    deactivate = bool(form.deactivate_missing.data)
    with services().db.session() as db:
        try:
            plan = roster_service.preview(db, actor, data, deactivate_missing=deactivate)
        except RosterFileError as exc:
            return _render("admin/roster.html", actor, 400, form=form,
                           error=_("ファイルを読めません: %(why)s",
                                   why=describe(exc.code, str(exc))))
    preview_id = secrets.token_urlsafe(16)
    services().store.put(f"roster-preview:{preview_id}",
                         {"actor": actor.account_id, "data": data.decode("latin-1"),
                          "deactivate": deactivate}, PREVIEW_TTL)
    apply_form = RosterApplyForm(preview_id=preview_id)
    return _render("admin/roster_preview.html", actor, 200 if plan.valid else 422,
                   plan=plan, apply_form=apply_form, deactivate=deactivate)


@bp.post("/roster/apply")
@admin_required
def roster_apply(actor: Actor):
    svc = services()
    form = RosterApplyForm()
    if not form.validate_on_submit():
        abort(400)
    stored = svc.store.take(f"roster-preview:{form.preview_id.data[:64]}")
    if not stored or stored.get("actor") != actor.account_id:
        return _render("admin/roster.html", actor, 400, form=RosterUploadForm(),
                       error=_("確認の時間が切れました。もう一度ファイルを選んでください。"))
    with svc.db.session() as db:
        result = roster_service.import_roster(svc, db, actor, stored["data"].encode("latin-1"),
                                              deactivate_missing=stored["deactivate"])
    if not result.applied:
        return _render("admin/roster_preview.html", actor, 422, plan=result.plan,
                       apply_form=None, deactivate=stored["deactivate"])
    classes = sorted({(e["school_code"], e["grade"], e["class_name"]) for e in result.created})
    return _render("admin/roster_done.html", actor, plan=result.plan,
                   sheet_id=result.sheet_id, classes=classes)


@bp.get("/roster/sheets/<sheet_id>.pdf")
@admin_required
def roster_sheet(actor: Actor, sheet_id: str):
    svc = services()
    entries = roster_service.load_sheet(svc, actor, sheet_id)
    if entries is None:
        abort(404)
    grade, klass = request.args.get("grade"), request.args.get("class")
    if grade is not None or klass is not None:
        entries = [e for e in entries if (grade is None or e["grade"] == grade)
                   and (klass is None or e["class_name"] == klass)]
    with svc.db.session() as db:
        audit(db, "roster.sheet_downloaded", actor=actor.account_id, count=len(entries))
    return Response(first_password_pdf(entries, issuer=svc.settings.issuer),
                    mimetype="application/pdf", headers={
                        "Content-Disposition": "inline; filename=first-passwords.pdf",
                        "Cache-Control": "no-store"})


# ----------------------------------------------------------------------------- audit
def _audit_filter(db) -> tuple[audit_log.AuditFilter, str | None]:
    error = None
    try:
        since = audit_log.parse_date(request.args.get("since"))
        until = audit_log.parse_date(request.args.get("until"))
    except ValueError:
        since = until = None
        error = _("日付は YYYY-MM-DD で入れてください。")
    school = accounts.school_by_code(db, request.args.get("school", "")[:64])
    account_id = request.args.get("account_id") or None
    login = request.args.get("login_id", "").strip()
    if login and school is not None:
        found = db.scalar(select(Account.id).where(Account.school_id == school.id,
                                                   Account.login_id == login[:64]))
        account_id = found or "-"
    return audit_log.AuditFilter(account_id=account_id,
                                 client_id=request.args.get("client_id") or None,
                                 event=request.args.get("event") or None, since=since,
                                 until=until, school_id=school.id if school else None), error


@bp.get("/audit")
@admin_required
def audit_page(actor: Actor):
    with services().db.session() as db:
        flt, error = _audit_filter(db)
        rows = audit_log.search(db, actor, flt, limit=200)
        retention = audit_log.retention_days(db)
    form = RetentionForm(days=retention)
    return _render("admin/audit.html", actor, 400 if error else 200, rows=rows,
                   args=request.args, error=error, retention_form=form,
                   purge_form=ActionForm())


@bp.get("/audit.csv")
@admin_required
def audit_csv(actor: Actor):
    with services().db.session() as db:
        flt, error = _audit_filter(db)
        if error:
            abort(400)
        body = "".join(audit_log.export_csv(db, actor, flt))
        audit(db, "audit.exported", actor=actor.account_id)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": "attachment; filename=audit.csv", "Cache-Control": "no-store"})


@bp.post("/settings/retention")
@admin_required
def retention(actor: Actor):
    require(actor, Action.SETTINGS)
    form = RetentionForm()
    if not form.validate_on_submit():
        abort(400)
    with services().db.session() as db:
        audit_log.set_retention_days(db, actor, form.days.data)
    return redirect(url_for("admin.audit_page"), 303)


@bp.post("/audit/purge")
@admin_required
def purge(actor: Actor):
    require(actor, Action.SETTINGS)
    if not ActionForm().validate_on_submit():
        abort(400)
    with services().db.session() as db:
        audit_log.purge(db, actor=actor.account_id)
    return redirect(url_for("admin.audit_page"), 303)


# ----------------------------------------------------------------------------- API tokens
@bp.route("/tokens", methods=["GET", "POST"])
@admin_required
def api_tokens(actor: Actor):
    form = ApiTokenForm()
    with services().db.session() as db:
        if request.method == "POST" and form.validate_on_submit():
            row, value = credentials.issue_api_token(db, actor=actor,
                                                     label=form.label.data or "",
                                                     days=form.days.data)
            audit(db, "admin.api_token_issued", actor=actor.account_id, token_id=row.id)
            db.commit()
            _show_once("api_token", value)
            return redirect(url_for("admin.api_tokens"), 303)
        rows = list(db.scalars(select(AdminApiToken).where(
            AdminApiToken.account_id == actor.account_id)
            .order_by(AdminApiToken.created_at.desc())))
    return _render("admin/tokens.html", actor, 400 if request.method == "POST" else 200,
                   form=form, rows=rows, action_form=ActionForm())


@bp.post("/tokens/<token_id>/revoke")
@admin_required
def api_token_revoke(actor: Actor, token_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    with services().db.session() as db:
        row = db.get(AdminApiToken, token_id) if len(token_id) <= 32 else None
        if row is None or row.account_id != actor.account_id:
            abort(404)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            audit(db, "admin.api_token_revoked", actor=actor.account_id, token_id=row.id)
    return redirect(url_for("admin.api_tokens"), 303)


# ----------------------------------------------------------------------------- wiring
# The card-linking pages add their routes to ``bp``: imported last, once ``bp`` exists.
from idp.admin import link_views  # noqa: E402, F401
