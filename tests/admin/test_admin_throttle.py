"""Issue 8: the same throttle guards admin TOTP (device cookie included), and sustained
guessing at an account is flagged to admins on the account page and in the API."""

from __future__ import annotations

import re
import time

import pyotp
from sqlalchemy import select

from idp.signin.throttle import ACCOUNT_POLICY, GUESSING_FAILURES
from tests.admin.conftest import admin_sign_in, own_ip
from tests.conftest import csrf_of


def _password_step(c, admin):
    page = c.get("/admin/login")
    return c.post("/admin/login", data={
        "csrf_token": csrf_of(page.get_data(as_text=True)), "school": admin.school_code,
        "login_id": admin.login_id, "password": admin.password, "next": ""})


def _totp(c, code: str):
    page = c.get("/admin/totp")
    return c.post("/admin/totp", data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                                       "code": code})


def _next_code(admin) -> str:
    # The step after this one: the current step may already be used (single use).
    return pyotp.TOTP(admin.totp_secret).at(time.time() + 30)


def test_totp_guessing_elsewhere_does_not_stop_the_admins_own_browser(app, make_account):
    admin = make_account("school_admin")
    own = own_ip(app.test_client())
    admin_sign_in(own, admin)  # earns the device cookie for both steps
    own.post("/admin/logout", data={"csrf_token": csrf_of(own.get("/admin/").get_data(
        as_text=True))})

    # Someone who knows the password guesses TOTP codes from another computer.
    thief = own_ip(app.test_client())
    assert _password_step(thief, admin).status_code == 303
    wrong = [_totp(thief, "000000" if _next_code(admin) != "000000" else "111111").status_code
             for _ in range(ACCOUNT_POLICY.free_failures + 2)]
    assert wrong == [401] * (ACCOUNT_POLICY.free_failures + 2)
    # Now even the right code is refused there (slowed, not checked) ...
    assert _totp(thief, _next_code(admin)).status_code == 401
    # ... and in any browser without the device cookie ...
    stranger = own_ip(app.test_client())
    assert _password_step(stranger, admin).status_code == 303
    assert _totp(stranger, _next_code(admin)).status_code == 401
    # ... but the admin's own browser signs in at once.
    assert _password_step(own, admin).status_code == 303
    assert _totp(own, _next_code(admin)).status_code == 303
    assert own.get("/admin/").status_code == 200


def test_sustained_guessing_is_flagged_on_the_account_page_and_in_the_api(
        app, svc, platform_admin, token_of, student, rp):
    from idp.store.models import AuditEvent
    from tests.oidc.test_throttle import _guess

    api = app.test_client()
    before = api.get(f"/api/admin/accounts/{student.id}", headers=token_of(platform_admin))
    assert before.status_code == 200 and before.get_json()["guessing"] is None

    _guess(app, rp, student, GUESSING_FAILURES + 5)
    body = api.get(f"/api/admin/accounts/{student.id}", headers=token_of(platform_admin))
    flag = body.get_json()["guessing"]
    assert flag["failures"] == GUESSING_FAILURES and flag["since"].endswith("Z")

    web = own_ip(app.test_client())
    admin_sign_in(web, platform_admin)
    html = web.get(f"/admin/accounts/{student.id}").get_data(as_text=True)
    assert 'id="account-guessing"' in html and str(GUESSING_FAILURES) in html
    # The page says when in Japan time, as the school lives it (the API keeps ISO UTC).
    from datetime import datetime

    from idp.japan_time import japan_minute

    warning = re.search(r'id="account-guessing">(.*?)</p>', html, re.S).group(1)
    assert japan_minute(datetime.fromisoformat(flag["since"])) in warning
    assert "UTC" not in warning and "日本時間" in warning
    with svc.db.session() as db:
        events = list(db.scalars(select(AuditEvent).where(
            AuditEvent.event == "login.guessing", AuditEvent.account_id == student.id)))
    assert len(events) == 1


def test_an_account_without_guessing_shows_no_flag(app, platform_admin, make_account):
    quiet = make_account("teacher")
    web = own_ip(app.test_client())
    admin_sign_in(web, platform_admin)
    html = web.get(f"/admin/accounts/{quiet.id}").get_data(as_text=True)
    assert 'id="account-guessing"' not in html
