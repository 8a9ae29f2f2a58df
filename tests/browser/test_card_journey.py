"""Card sign-in in a real browser: demo app → provider → card tab → card bridge → virtual card
through pcscd → consent → back at the demo app with its pairwise ``sub``; then the card alone,
a wrong PIN, a blocked card, the tablet code, and no bridge at all.

Each step leaves a screenshot in test-artifacts/browser/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from card_bridge.pin import ScriptedPinPrompt
from idp.demo.seed import DEMO_SCHOOL_CODE, DEMO_STUDENT_LOGIN
from idp.oidc.claims import subject_for
from idp.signin.context import ACR_CARD, ACR_PASSWORD
from idp.store.models import Account, CardBinding, Client, School
from tests.bridge.bridge_helpers import PIN, wait_for
from tests.browser.a11y import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.pcsc]
TIMEOUT_MS = 20_000


class Journey:
    """One browser context (one person's browser) going through the demo."""

    def __init__(self, chromium, demo, artifacts: Path, name: str) -> None:
        self.context = chromium.new_context(locale="ja-JP", viewport={"width": 900,
                                                                      "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.demo = demo
        self.rp, _served = next(iter(demo.rps.values()))
        self.artifacts = artifacts
        self.name = name
        self.shots = 0
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))

    def challenges_asked(self) -> int:
        """How many times the page's script asked the provider for a challenge."""
        return sum("/login/card/challenge" in url for url in self.requests)

    def shot(self, step: str) -> None:
        """A screenshot of the page as it is now, and axe's check of it."""
        assert_accessible(self.page, f"{self.name} {step}")
        self.shots += 1
        path = self.artifacts / f"{self.name}-{self.shots:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)

    def close(self) -> None:
        self.context.close()

    def open_app(self) -> None:
        self.page.goto(self.rp.origin + "/")
        self.shot("app")

    def to_card_page(self, *, card_level: bool = False) -> None:
        self.open_app()
        self.page.click("#sign-in-card" if card_level else "#sign-in")
        if not card_level:
            self.page.wait_for_url(re.compile(r"/login\?"))
            self.shot("login")
            self.page.click("#card-tab")
        # An app that needs the card gets the card step at once (no tab to find).
        self.page.wait_for_url(re.compile(r"/login/card\?"))
        self.page.wait_for_selector("#card-start")
        self.shot("card-page")

    def start_card(self) -> None:
        self.page.click("#card-start")

    def error(self) -> tuple[str, str]:
        """(error code, the sentence shown) once the page shows a failure."""
        self.page.wait_for_selector("#card-error:not([hidden])")
        return (self.page.get_attribute("#card-login", "data-error") or "",
                self.page.inner_text("#card-error-text"))

    def back_at_app(self) -> dict[str, str]:
        """Allow on the consent page if asked; return what the demo app shows."""
        self.page.wait_for_url(re.compile(rf"^({re.escape(self.rp.origin)}/|.*/consent\?)"))
        if "/consent" in self.page.url:
            self.shot("consent")
            self.page.click("button[name=allow]")
            self.page.wait_for_url(re.compile(rf"^{re.escape(self.rp.origin)}/"))
        self.page.wait_for_selector("#sub")
        self.shot("back-at-app")
        return {"sub": self.page.inner_text("#sub").strip(),
                "acr": self.page.inner_text("#acr").strip(),
                "amr": self.page.inner_text("#amr").strip()}


@pytest.fixture
def journey(chromium, demo, artifacts, request):
    opened: list[Journey] = []

    def open_one(name: str | None = None) -> Journey:
        one = Journey(chromium, demo, artifacts, name or request.node.name.removeprefix("test_"))
        opened.append(one)
        return one

    yield open_one
    for one in opened:
        one.close()


def _svc(demo):
    return demo.provider_app.extensions["mynagate"]


def demo_student(demo) -> tuple[Account, str]:
    with _svc(demo).db.session() as db:
        account = db.scalar(select(Account).join(School).where(
            School.code == DEMO_SCHOOL_CODE, Account.login_id == DEMO_STUDENT_LOGIN))
        return account, demo.seed["student"]["password"]


def expected_sub(demo) -> str:
    svc = _svc(demo)
    account, _password = demo_student(demo)
    client_id = next(iter(demo.seed["clients"].values()))["client_id"]
    with svc.db.session() as db:
        return subject_for(svc.settings.pairwise_secret, db.get(Client, client_id), account.id)


def link_card(demo) -> None:
    """Link the demo card to demo-student as the first journey does (for tests run alone)."""
    from idp.accounts.cards import CardIdentity, bind_card, find_binding
    from idp.jpki.testing.pki_dir import load_test_pki
    from idp.jpki.trust import certificate_sha256

    svc = _svc(demo)
    pki = load_test_pki(Path(svc.settings.jpki_trust_anchors[0]).parent)
    cert = pki.cards[0].certificate
    issuer, serial = cert.issuer.rfc4514_string(), format(cert.serial_number, "x")
    with svc.db.session() as db:
        if find_binding(db, issuer, serial) is None:
            account = db.scalar(select(Account).where(Account.login_id == DEMO_STUDENT_LOGIN))
            not_after = cert.not_valid_after_utc.replace(tzinfo=None)
            bind_card(db, account, CardIdentity(issuer, serial, certificate_sha256(cert),
                                                not_after), ip="test")


def test_first_card_sign_in_links_the_card_with_the_password(journey, demo, bridge,
                                                            virtual_card):
    virtual_card.set_tries_left(3)
    account, password = demo_student(demo)
    with _svc(demo).db.session() as db:
        assert db.scalar(select(CardBinding).where(CardBinding.account_id == account.id)) is None

    person = journey()
    person.to_card_page()
    bridge.answer(PIN)
    person.start_card()
    # Not linked yet is the normal first step: a calm notice (not the red error box) that
    # stays until the child presses its button.
    person.page.wait_for_selector("#card-notice:not([hidden])")
    person.shot("card-not-linked")
    assert person.page.get_attribute("#card-login", "data-notice") == "card_not_linked"
    assert "IDとパスワード" in person.page.inner_text("#card-notice")
    assert person.page.is_hidden("#card-error")
    # The bridge named the app (as the page passed it on) and the site in its PIN window.
    assert bridge.prompt.asked
    site = bridge.prompt.asked[0][0]
    assert site.app == person.rp.name and site.where.startswith("127.0.0.1:")
    person.page.wait_for_timeout(2500)  # the old page moved on by itself after 1.5 s
    assert "/login/card" in person.page.url and person.page.is_visible("#card-notice")
    person.page.click("#card-notice-continue")

    person.page.wait_for_url(re.compile(r"/login\?"))
    person.shot("password-to-link")
    assert "いちどだけ" in person.page.inner_text("main")
    person.page.select_option("select[name=school]", DEMO_SCHOOL_CODE)
    person.page.fill("input[name=login_id]", DEMO_STUDENT_LOGIN)
    person.page.fill("input[name=password]", password)
    person.page.click("input[type=submit], button[type=submit]")
    # The confirmation page names the account; nothing is linked until つなぐ.
    person.page.wait_for_url(re.compile(r"/login/link\?"))
    person.shot("confirm-link")
    assert DEMO_STUDENT_LOGIN in person.page.inner_text("#link-account")
    with _svc(demo).db.session() as db:
        assert db.scalar(select(CardBinding).where(CardBinding.account_id == account.id)) is None
    person.page.click("#link-yes")
    shown = person.back_at_app()
    assert shown["sub"] == expected_sub(demo)
    # Issue 8: the sign-in that links the card is password-level.
    assert shown["acr"] == ACR_PASSWORD and shown["amr"] == "pwd"
    with _svc(demo).db.session() as db:
        assert db.scalar(select(CardBinding).where(CardBinding.account_id == account.id))


def test_then_the_card_alone_signs_in_at_the_card_level(journey, demo, bridge, virtual_card):
    link_card(demo)
    virtual_card.set_tries_left(3)
    person = journey()
    person.to_card_page(card_level=True)
    assert person.page.query_selector("#password-tab") is None  # the app asked for the card
    bridge.answer(PIN)
    person.start_card()
    shown = person.back_at_app()
    assert shown["sub"] == expected_sub(demo) and shown["acr"] == ACR_CARD
    assert person.page.url.startswith(person.rp.origin)
    # The first try used the challenge the page came with, and the verify answer was the
    # app's redirect: the browser never went through /authorize after the card.
    assert person.challenges_asked() == 0
    after_card = person.requests[next(i for i, url in enumerate(person.requests)
                                      if "/login/card/verify" in url) + 1:]
    assert not any("/authorize" in url for url in after_card), after_card


def test_the_card_page_opened_again_in_another_tab_spoils_nothing(journey, demo, bridge,
                                                                  virtual_card):
    """The same card page loaded again with the child's cookie while the first tab waits
    (a second tab, a prefetch, another site's link): the first tab's sign-in still works,
    with the challenge it came with."""
    link_card(demo)
    virtual_card.set_tries_left(3)
    person = journey()
    person.to_card_page(card_level=True)
    other = person.context.new_page()
    other.goto(person.page.url)
    other.wait_for_selector("#card-start")
    other.close()
    bridge.answer(PIN)
    person.start_card()
    shown = person.back_at_app()
    assert shown["sub"] == expected_sub(demo) and shown["acr"] == ACR_CARD
    assert person.challenges_asked() == 0
    assert virtual_card.tries_left == 3


def test_wrong_pin_shows_the_tries_left(journey, demo, bridge, virtual_card):
    link_card(demo)
    virtual_card.set_tries_left(3)
    person = journey()
    person.to_card_page()
    bridge.answer("9999")
    person.start_card()
    code, text = person.error()
    person.shot("wrong-pin")
    assert code == "wrong_pin" and "あと2回" in text
    assert "もう一度「はじめる」をおして" in text  # what to do next
    assert virtual_card.tries_left == 2
    assert person.page.is_visible("#card-password-link")  # the password is one click away
    assert person.challenges_asked() == 0  # the first try had the page's challenge
    # Trying again with the right PIN works, from the same page, with a challenge asked
    # for anew (the page's was offered to the bridge once already).
    bridge.answer(PIN)
    person.start_card()
    assert person.back_at_app()["sub"] == expected_sub(demo)
    assert virtual_card.tries_left == 3
    assert person.challenges_asked() == 1


def test_blocked_card_sends_the_student_to_the_city_office(journey, demo, bridge, virtual_card):
    virtual_card.set_tries_left(0)
    try:
        person = journey()
        person.to_card_page()
        bridge.answer(PIN)
        person.start_card()
        code, text = person.error()
        person.shot("blocked")
        assert code == "pin_blocked" and "市役所" in text
        assert bridge.prompt.asked == []  # no PIN window for a blocked card
    finally:
        virtual_card.set_tries_left(3)


def test_card_put_on_the_reader_after_start_and_cancelled_pin(journey, demo, bridge,
                                                              virtual_card, vpcd_reader):
    from card_bridge.card import pcsc_status

    def present() -> bool:
        return vpcd_reader in pcsc_status(vpcd_reader).readers_with_card

    link_card(demo)
    virtual_card.set_tries_left(3)
    virtual_card.client.remove()
    try:
        assert wait_for(lambda: not present(), 10)
        person = journey()
        person.to_card_page()
        bridge.answer(None)  # the person presses Cancel in the PIN window
        person.start_card()
        person.page.wait_for_selector("#card-step-card.current")
        assert "のせてね" in person.page.inner_text("#card-status")
        person.shot("put-the-card")
    finally:
        virtual_card.client.insert()
    assert wait_for(present, 10)
    code, text = person.error()
    person.shot("cancelled")
    assert code == "cancelled" and "やめました" in text
    assert bridge.prompt.asked and virtual_card.tries_left == 3  # cancelling costs no try


def test_tablet_signs_in_with_a_code_and_the_card_on_a_school_pc(journey, demo, bridge,
                                                                 virtual_card, vpcd_reader):
    from card_bridge.card import PcscTransport
    from card_bridge.pair import pair_with_provider

    link_card(demo)
    virtual_card.set_tries_left(3)
    tablet = journey("tablet")
    tablet.to_card_page()
    tablet.page.click("#card-pair-start")
    tablet.page.wait_for_selector("#card-pair-box:not([hidden])")
    code = tablet.page.inner_text("#card-pair-code").strip()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    assert tablet.page.get_attribute("#card-pair-qr", "src").startswith("data:image/svg+xml")
    tablet.page.wait_for_selector("#card-pair-status:not(:empty)")  # no eval under the CSP
    tablet.shot("code-shown")

    asked: list[tuple[str, str]] = []
    answer = pair_with_provider(
        demo.issuer, code, prompt=ScriptedPinPrompt([PIN]),
        transport_factory=lambda: PcscTransport(vpcd_reader),
        confirm=lambda facts: asked.append((facts.client_name, facts.origin)) or True)
    assert answer["state"] == "done"
    assert asked == [(next(iter(demo.rps.values()))[0].name, demo.issuer)]
    shown = tablet.back_at_app()
    assert shown["sub"] == expected_sub(demo) and shown["acr"] == ACR_CARD


def test_no_bridge_running_explains_how_to_install_it(journey, demo, bridge):
    bridge.stop()
    try:
        person = journey()
        person.to_card_page()
        person.start_card()
        code, text = person.error()
        person.shot("no-bridge")
        assert code == "no_bridge" and "カードアプリ" in text
        assert person.page.is_visible("#card-install-help")
        # The way to install it is the provider's own help page (issue 12).
        assert person.page.get_attribute("#card-install-link", "href") == "/help/card-bridge"
        person.page.click("#card-password-link")
        person.page.wait_for_selector("input[name=password]")
        person.shot("password-instead")
    finally:
        bridge.start()
