"""The IT person's admin pages in real headless Chromium (issue 12): the home page's chart
is drawn without a CSP complaint, the hand-off page's copy button works from its static
script, and the audit log's columns do not wrap one character per line.

Screenshots go to test-artifacts/admin-pages/.
"""

from __future__ import annotations

import re

import pytest

from tests.admin.conftest import _make_account
from tests.browser.test_admin_journey import Person, provider  # noqa: F401 - the fixture
from tests.conftest import ROOT, unique

pytestmark = [pytest.mark.browser]
ARTIFACTS = ROOT / "test-artifacts" / "admin-pages"


def _watch_console(person: Person) -> list[str]:
    problems: list[str] = []
    # A CSP refusal (inline script or style) and a script error; not the favicon's 404.
    person.page.on("console", lambda m: problems.append(m.text)
                   if "Content Security Policy" in m.text or "Refused to" in m.text else None)
    person.page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def test_home_handoff_and_audit_in_chromium(chromium, provider):  # noqa: F811
    from idp.store.models import School

    svc, issuer = provider
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with svc.db.session() as db:
        school = School(code=unique("pg"), name="ブラウザ小学校")
        db.add(school)
    admin = _make_account(svc, school, "platform_admin")
    person = Person(chromium, "it-person", ARTIFACTS)
    person.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=issuer)
    problems = _watch_console(person)
    try:
        person.admin_sign_in(issuer, admin)
        page = person.page
        assert page.locator("#sign-in-chart svg rect.bar").count() >= 1  # this sign-in
        assert page.locator("#sign-in-chart svg rect.bar-admin").first.get_attribute(
            "class") == "bar bar-admin"
        person.shot("home")

        page.click("#nav-clients")
        page.wait_for_url(f"{issuer}/admin/clients")
        person.shot("clients")
        page.click("#client-new")
        page.get_by_label("アプリの名前").fill("コピーの確認アプリ")
        page.get_by_label("リダイレクトURI(1行に1つ)").fill("https://copy.example.test/cb")
        person.shot("client-form")
        page.click("#client-save")
        page.wait_for_url(re.compile(re.escape(issuer) + r"/admin/clients/[^/]+/handoff$"))
        secret = page.inner_text("#handoff-secret").strip()
        page.click("button[data-copy='handoff-secret']")
        # A selector, not wait_for_function: that polls with eval, which the page's CSP
        # (rightly) refuses.
        page.wait_for_selector("#copy-status:not(:empty)")
        assert page.inner_text("#copy-status") == "コピーしました。"
        assert page.evaluate("navigator.clipboard.readText()") == secret
        person.shot("handoff")

        page.click("#nav-audit")
        page.wait_for_url(f"{issuer}/admin/audit")
        assert page.locator("#f-since").get_attribute("type") == "date"
        # The time stays on one line (a squeezed column used to wrap each character).
        box = page.locator("#audit-table tbody tr td time").first.bounding_box()
        assert box is not None and box["height"] < 30 and box["width"] > 120, box
        event_cell = page.locator("#audit-table tbody tr td").nth(1).bounding_box()
        assert event_cell is not None and event_cell["width"] > 80, event_cell
        person.shot("audit")
        assert problems == []
    finally:
        person.context.close()
