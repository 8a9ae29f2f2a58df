"""School-assisted card linking in a real browser (issue 8): a teacher signs in with password
+ TOTP, lands on カードをつなぐ, picks the student, the student's card answers through the
card bridge and pcscd (card.js on the admin page), the confirmation names the student, and
after つなぐ the student's card signs in to the demo app without any password.

Each step leaves a screenshot in test-artifacts/browser/.
"""

from __future__ import annotations

import re
import secrets

import pyotp
import pytest
from sqlalchemy import select

from idp.demo.seed import DEMO_SCHOOL_CODE
from idp.store.models import Account, AuditEvent, CardBinding, School
from tests.bridge.bridge_helpers import PIN
from tests.browser.a11y import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.pcsc]
TIMEOUT_MS = 20_000


def _account(svc, role: str, *, totp: bool) -> dict:
    from idp.signin.passwords import hash_password
    from idp.store.admin_models import AdminTotp
    from idp.store.models import utcnow

    password = "teacher passphrase " + secrets.token_hex(3)
    login = f"{role}-{secrets.token_hex(3)}"
    secret = pyotp.random_base32()
    with svc.db.session() as s:
        school = s.scalar(select(School).where(School.code == DEMO_SCHOOL_CODE))
        row = Account(school_id=school.id, login_id=login, display_name="佐藤 ひかり",
                      role=role, password_hash=hash_password(password), grade="4",
                      class_name="1")
        s.add(row)
        s.flush()
        if totp:
            s.add(AdminTotp(account_id=row.id, secret=secret, confirmed_at=utcnow(),
                            last_step=0))
        return {"id": row.id, "login": login, "password": password, "secret": secret}


def test_teacher_links_a_students_card_at_the_school_pc(chromium, demo, bridge, artifacts):
    svc = demo.provider_app.extensions["mynagate"]
    issuer = svc.settings.issuer
    teacher = _account(svc, "teacher", totp=True)
    student = _account(svc, "student", totp=False)
    context = chromium.new_context(locale="ja-JP", viewport={"width": 900, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    shots = iter(range(1, 100))

    def shot(step: str) -> None:
        """A screenshot of the page as it is now (whichever browser), and axe's check."""
        assert_accessible(page, f"assisted {step}")
        page.screenshot(path=str(artifacts / f"assisted-{next(shots):02d}-{step}.png"),
                        full_page=True)

    try:
        page.goto(f"{issuer}/admin/login")
        page.get_by_label("学校コード", exact=True).fill(DEMO_SCHOOL_CODE)
        page.get_by_label("ID", exact=True).fill(teacher["login"])
        page.get_by_label("パスワード", exact=True).fill(teacher["password"])
        shot("admin-login")
        page.click("#admin-login-submit")
        page.wait_for_url(f"{issuer}/admin/totp")
        page.get_by_label("確認コード(6けた)").fill(pyotp.TOTP(teacher["secret"]).now())
        shot("totp")
        page.click("#totp-submit")
        page.wait_for_url(f"{issuer}/admin/link-card")
        shot("roster")
        page.click(f"#link-{student['login']}")
        page.wait_for_selector("#card-start")
        shot("card-page")
        bridge.answer(PIN)
        page.click("#card-start")
        page.wait_for_url(re.compile(r"/admin/link-card/[0-9a-f]+/confirm$"))
        shot("confirm")
        assert page.inner_text("#link-student-name") == "佐藤 ひかり"
        assert page.inner_text("#link-student-login") == student["login"]
        page.click("#link-confirm")
        page.wait_for_selector("#link-done")
        shot("done")
    finally:
        context.close()
    with svc.db.session() as s:
        [binding] = s.scalars(select(CardBinding).where(
            CardBinding.account_id == student["id"]))
        event = s.scalar(select(AuditEvent).where(AuditEvent.event == "card.bound",
                                                  AuditEvent.account_id == student["id"]))
        assert binding.status == "active"
        assert event.actor == teacher["id"] and event.details["assisted_by"] == teacher["id"]
    # The student, in their own browser, signs in with the card alone.
    pupil = chromium.new_context(locale="ja-JP")
    try:
        page = pupil.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{issuer}/login/card")
        page.wait_for_selector("#card-start")
        shot("pupil-card-page")
        bridge.answer(PIN)
        page.click("#card-start")
        page.wait_for_url(re.compile(rf"^{re.escape(issuer)}/account/?"))
        shot("pupil-signed-in")
    finally:
        pupil.close()
