"""The administration journey in real headless Chromium against a real provider server:

1. a school admin signs in with password + TOTP, uploads a CP932 roster with Japanese headers,
   sees the preview, applies it and downloads the first-passwords sheet (PDF);
2. a platform admin registers an app through the admin pages and sees its secret once;
3. a new student from the roster signs in to that app (app → provider login, by keyboard →
   consent → back at the app with the student's pairwise ``sub``);
4. the student opens "My account", sees the app and what it received, withdraws it: the page
   no longer lists it and the app's access token stops working at /userinfo.

Each step leaves a screenshot in test-artifacts/admin-journey/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
import requests
from sqlalchemy import select

from tests.admin.conftest import Admin, _make_account
from tests.browser.a11y import assert_accessible
from tests.browser.journey_rp import JourneyRP
from tests.browser.steps import choose_own_password
from tests.conftest import ROOT, build_app, close_app, unique

pytestmark = [pytest.mark.browser]
TIMEOUT_MS = 15_000
ARTIFACTS = ROOT / "test-artifacts" / "admin-journey"
HEADER = "学校コード,ログインID,氏名,学年,組,役割"
# 髙 exists in CP932 (Microsoft's extension) but not in plain Shift_JIS: Excel writes it.
PUPILS = [("5", "1", "佐藤 はると"), ("5", "1", "鈴木 ゆい"), ("5", "2", "髙橋 そうた")]


@pytest.fixture(scope="module")
def provider(settings_overrides):
    """The provider on a port of its own (its issuer is that address), on the selected
    backend, served by werkzeug's threaded server as ``make run`` does."""
    from idp.demo.serve import ServedApp

    served = ServedApp("127.0.0.1", 0)
    try:
        application = build_app({**settings_overrides, "issuer": served.url})
        served.start(application)
    except BaseException:
        served.stop()
        raise
    yield application.extensions["mynagate"], served.url
    served.stop()
    close_app(application)


@pytest.fixture(scope="module")
def rp_server():
    """The app's socket, bound before it is registered: its port is in the redirect URI."""
    from idp.demo.serve import ServedApp

    served = ServedApp("127.0.0.1", 0)
    yield served
    served.stop()


class Person:
    """One person's browser (a context of its own: own cookies)."""

    def __init__(self, chromium, name: str, artifacts: Path = ARTIFACTS) -> None:
        self.context = chromium.new_context(locale="ja-JP",
                                            viewport={"width": 1000, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.name = name
        self.shots = 0
        self.artifacts = artifacts  # this journey's screenshot folder
        artifacts.mkdir(parents=True, exist_ok=True)

    def shot(self, step: str) -> None:
        """A screenshot of the page as it is now, and axe's check of it."""
        assert_accessible(self.page, f"{self.name} {step}")
        self.shots += 1
        self.page.screenshot(path=str(self.artifacts / f"{self.name}-{self.shots:02d}-{step}.png"),
                             full_page=True)

    def admin_sign_in(self, issuer: str, admin: Admin, *, by_keyboard: bool = False) -> None:
        page = self.page
        page.goto(f"{issuer}/admin/login")
        if by_keyboard:
            seen = focus_order(page)
            start = seen.index("school")
            assert seen[start:start + 4] == ["school", "login_id", "password",
                                             "admin-login-submit"], seen
        page.get_by_label("学校コード", exact=True).fill(admin.school_code)
        page.get_by_label("ID", exact=True).fill(admin.login_id)
        page.get_by_label("パスワード", exact=True).fill(admin.password)
        self.shot("admin-login")
        if by_keyboard:
            page.get_by_label("パスワード", exact=True).press("Enter")
        else:
            page.click("#admin-login-submit")
        page.wait_for_url(f"{issuer}/admin/totp")
        page.get_by_label("確認コード(6けた)").fill(pyotp.TOTP(admin.totp_secret).now())
        self.shot("totp")
        page.click("#totp-submit")
        page.wait_for_url(f"{issuer}/admin/")
        self.shot("admin-home")


def roster_csv(school_code: str, logins: list[str]) -> bytes:
    lines = [HEADER] + [f"{school_code},{login},{name},{grade},{klass},児童"
                        for login, (grade, klass, name) in zip(logins, PUPILS, strict=True)]
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


def pdf_strings(pdf: bytes) -> str:
    """The text a reader sees on the PDF's pages (the slips embed their fonts as TrueType
    subsets, so the content streams hold glyph codes, not the letters)."""
    from tests.admin.pdf_layout import page_text

    return "\n".join(page_text(pdf))


def focus_order(page, presses: int = 20) -> list[str]:
    """Press Tab from the top of the page and note what gets focus (name, else id)."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        seen.append(page.evaluate(
            "(() => { const e = document.activeElement;"
            " return e ? (e.getAttribute('name') || e.id || e.tagName) : ''; })()"))
    return seen


def test_roster_to_app_to_my_account_and_withdraw(chromium, provider, rp_server):
    from idp.accounts.roles import Actor
    from idp.admin.roster_service import load_sheet
    from idp.oidc.claims import subject_for
    from idp.store.models import Account, Client, School

    svc, issuer = provider
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with svc.db.session() as db:
        school = School(code=unique("jrn"), name="ジャーニー小学校")
        db.add(school)
    school_admin = _make_account(svc, school, "school_admin")
    platform_admin = _make_account(svc, school, "platform_admin")
    logins = [unique("pupil") for _ in PUPILS]
    people: list[Person] = []

    try:
        # -- 1. the school admin imports the roster and prints the first passwords -------
        teacher = Person(chromium, "1-school-admin")
        people.append(teacher)
        teacher.admin_sign_in(issuer, school_admin, by_keyboard=True)
        page = teacher.page
        page.click("#nav-roster")
        page.wait_for_url(f"{issuer}/admin/roster")
        page.get_by_label("名簿ファイル").set_input_files(
            {"name": "名簿.csv", "mimeType": "text/csv",
             "buffer": roster_csv(school.code, logins)})
        teacher.shot("roster")
        page.click("#roster-preview")
        summary = page.inner_text("#roster-summary").splitlines()
        assert summary == ["新しく作る: 3人", "変更する: 0人", "変わらない: 0人", "無効にする: 0人",
                           "まちがい: 0件"], summary
        assert page.locator("#roster-errors").count() == 0
        with svc.db.session() as db:  # the preview wrote nothing
            assert db.scalar(select(Account.id).where(Account.school_id == school.id,
                                                      Account.login_id == logins[0])) is None
        teacher.shot("roster-preview")
        page.click("#roster-apply")
        assert page.inner_text("#roster-result") == "作成 3人 / 変更 0人 / 無効化 0人"
        teacher.shot("roster-done")
        sheet_href = page.get_attribute("#roster-sheet-all", "href")
        class_links = page.locator("#roster-sheets a")
        assert class_links.count() == 2  # 5年1組 and 5年2組
        sheet = teacher.context.request.get(issuer + sheet_href)  # with the admin's cookies
        assert sheet.status == 200
        assert sheet.headers["content-type"] == "application/pdf"
        pdf = sheet.body()
        assert pdf.startswith(b"%PDF-")
        one_class = teacher.context.request.get(issuer + class_links.nth(1).get_attribute(
            "href"))
        assert one_class.status == 200 and one_class.body().startswith(b"%PDF-")
        # Nobody else may fetch it: not a signed-out browser.
        assert requests.get(issuer + sheet_href, timeout=10,
                            allow_redirects=False).status_code != 200

        with svc.db.session() as db:
            rows = {a.login_id: a for a in db.scalars(
                select(Account).where(Account.school_id == school.id,
                                      Account.login_id.in_(logins)))}
            assert [(rows[login].display_name, rows[login].grade, rows[login].class_name,
                     rows[login].role) for login in logins] == [
                (name, grade, klass, "student") for grade, klass, name in PUPILS]
            pupil_id = rows[logins[0]].id
        entries = load_sheet(svc, Actor(school_admin.id, "school_admin", school.id),
                             sheet_href.rsplit("/", 1)[1].removesuffix(".pdf"))
        first_password = {e["login_id"]: e["password"] for e in entries}[logins[0]]
        printed = pdf_strings(pdf)
        for entry in entries:  # every slip carries its ID and its first password
            assert entry["login_id"] in printed and entry["password"] in printed

        # -- 2. the platform admin registers the app and sees its secret once ------------
        operator = Person(chromium, "2-platform-admin")
        people.append(operator)
        operator.admin_sign_in(issuer, platform_admin)
        page = operator.page
        page.click("#nav-clients")
        page.wait_for_url(f"{issuer}/admin/clients")
        operator.shot("clients")
        page.click("#client-new")
        redirect_uri = f"{rp_server.url}/callback"
        page.get_by_label("アプリの名前").fill("ジャーニー算数")
        page.get_by_label("リダイレクトURI(1行に1つ)").fill(redirect_uri)
        page.get_by_label("クライアント認証方式").select_option("client_secret_basic")
        page.get_by_label("許可するスコープ").select_option(["openid", "profile", "school"])
        operator.shot("client-form")
        page.click("#client-save")
        # Issue 12: saving opens the hand-off page for the app's vendor.
        page.wait_for_url(re.compile(re.escape(issuer) + r"/admin/clients/[^/]+/handoff$"))
        client_id = page.inner_text("#handoff-client-id").strip()
        client_secret = page.inner_text("#handoff-secret").strip()
        assert client_id and len(client_secret) >= 32
        assert page.inner_text("#handoff-scopes").strip() == "openid profile school"
        assert page.inner_text("#handoff-issuer").strip() == issuer
        operator.shot("client-handoff-secret-once")
        page.reload()
        assert page.locator("#handoff-secret").count() == 0  # shown once, never again
        assert page.locator("#handoff-secret-gone").count() == 1
        operator.shot("client-handoff-later")
        assert client_secret not in page.content()
        with svc.db.session() as db:
            client_row = db.get(Client, client_id)
            assert client_row.redirect_uris == [redirect_uri]
            assert sorted(client_row.scopes) == ["openid", "profile", "school"]
            expected_sub = subject_for(svc.settings.pairwise_secret, client_row, pupil_id)

        app = JourneyRP(issuer, client_id, client_secret, redirect_uri)
        rp_server.start(app.wsgi(rp_server.port))

        # -- 3. a new pupil signs in to the app, by keyboard ------------------------------
        pupil = Person(chromium, "3-pupil")
        people.append(pupil)
        page = pupil.page
        page.goto(rp_server.url + "/")
        pupil.shot("app")
        page.click("#sign-in")
        page.wait_for_url(re.compile(re.escape(issuer) + r"/login\?"))
        for label in ("学校", "ID", "パスワード"):  # every field is named by its label
            assert page.get_by_label(label, exact=True).count() == 1, label
        seen = focus_order(page)
        cycle = seen[:seen.index("BODY")] if "BODY" in seen else seen  # one round of Tab
        start = cycle.index("school")
        assert cycle[start:start + 4] == ["school", "login_id", "password", "submit"], seen
        page.evaluate("document.activeElement.blur()")
        page.keyboard.press("Tab")
        while page.evaluate("document.activeElement.name") != "school":
            page.keyboard.press("Tab")
        page.locator(":focus").select_option(school.code)
        page.keyboard.press("Tab")
        page.keyboard.type(logins[0])
        page.keyboard.press("Tab")
        page.keyboard.type(first_password)
        pupil.shot("login")
        page.keyboard.press("Enter")  # Enter in the password field submits
        choose_own_password(page, issuer, pupil.shot)
        page.wait_for_url(re.compile(re.escape(issuer) + r"/consent\?"))
        assert page.locator("#scope-profile").count() == 1
        pupil.shot("consent")
        page.click("button[name=allow]")
        page.wait_for_url(rp_server.url + "/callback*")
        assert page.inner_text("#sub") == expected_sub
        assert page.inner_text("#name") == PUPILS[0][2]
        pupil.shot("back-at-app")
        assert len(app.received) == 1 and app.received[0].sub == expected_sub
        access_token = app.received[0].access_token
        userinfo_url = f"{issuer}/userinfo"
        bearer = {"Authorization": f"Bearer {access_token}"}
        assert requests.get(userinfo_url, headers=bearer, timeout=10).status_code == 200

        # -- 4. My account: the app, what it received; withdraw ---------------------------
        page.goto(f"{issuer}/account/")
        section = page.locator(f"#app-{client_id}")
        assert section.count() == 1
        text = section.inner_text()
        assert "ジャーニー算数" in text
        for word in ("名前", "学年", "クラス"):  # what it received, in plain words
            assert word in text, (word, text)
        # One row per sign-in at the app: its UserInfo calls (the app's and ours above) add
        # none.
        assert section.locator("table.history tbody tr").count() == 1
        pupil.shot("my-account")
        page.click(f"#withdraw-{client_id}")
        page.wait_for_selector("#message")
        assert page.locator(f"#app-{client_id}").count() == 0
        assert page.locator("#no-apps").count() == 1
        pupil.shot("withdrawn")
        after = requests.get(userinfo_url, headers=bearer, timeout=10)
        assert after.status_code == 401, after.text
        assert "invalid_token" in after.headers.get("WWW-Authenticate", "")
    finally:
        for person in people:
            person.context.close()

