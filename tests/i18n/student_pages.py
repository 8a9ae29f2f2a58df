"""Every page a student (and a guardian) reads, rendered in Japanese by walking the real
journeys through the test client: sign-in (password and card), its notices and errors,
linking a card, the tablet's code, consent (with the guardian steps), the my page and its
password pages, the first password, sign-out, the graduate's refusal and the error pages.

The pages are collected once per test session (:func:`collect`) and read by
tests/i18n/test_furigana.py. A page is kept with whom it speaks to: ``student`` (furigana,
full-width punctuation, 「〜してね」), ``guardian`` and ``helper`` (the card-app help page
for the adult who installs it) (furigana and punctuation; they are spoken to politely).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date

from tests.card.helpers import CardBrowser
from tests.conftest import RP, Student, csrf_of, query_of, unique

# The templates and the code whose sentences appear on those pages (the msgid checks).
STUDENT_PAGES = ("login.html", "card_login.html", "_card_messages.html", "consent.html",
                 "error.html", "logged_out.html", "logout_confirm.html",
                 "graduate_refused.html", "link_card.html", "card_pair.html",
                 "account/home.html", "account/password.html", "account/reset.html",
                 "account/reset_done.html", "account/card_password.html",
                 "account/first_password.html", "index.html", "unavailable.html")
GUARDIAN_PAGES = ("account/children.html", "account/totp.html", "login_totp.html")
HELP_PAGES = ("help/card_bridge.html",)
# card_views and pairing_views answer card.js in JSON; it shows their sentences on the card
# page when it has none of its own for the code.
STUDENT_CODE = ("idp/auth/card_views.py", "idp/auth/pairing_views.py",
                "idp/account/my_page_views.py", "idp/account/forms.py", "idp/auth/forms.py")
GUARDIAN_CODE = ("idp/account/guardian_views.py", "idp/account/totp_views.py",
                 "idp/auth/login_views.py")
ACR_CARD = "urn:mynagate:acr:mynumber-card"
APP_NAME = "さんすうドリル"  # the data on the pages is in words a child reads too


@dataclass
class Page:
    name: str
    html: str
    audience: str = "student"


@dataclass
class Crawl:
    app: object
    card_app: object
    school_code: str
    school_id: str
    new_card: object
    pages: list[Page] = field(default_factory=list)

    @property
    def svc(self):
        return self.card_app.extensions["mynagate"]

    def browser(self, app=None) -> CardBrowser:
        # An address of its own: the sign-in throttle counts per address, and the other
        # tests of the session sign in from 127.0.0.1 too.
        client = (app or self.card_app).test_client()
        client.environ_base["REMOTE_ADDR"] = "10." + ".".join(
            str(secrets.randbelow(250) + 1) for _ in range(3))
        return CardBrowser(client)

    def keep(self, name: str, response, status: int = 200, audience: str = "student") -> str:
        html = response.get_data(as_text=True)
        assert response.status_code == status, f"{name}: {response.status_code} {html[:300]}"
        assert '<html lang="ja">' in html, f"{name} is not the Japanese page"
        self.pages.append(Page(name, html, audience))
        return html

    def student(self, **fields) -> Student:
        from idp.signin.passwords import hash_password
        from idp.store.models import Account

        password = "long enough words " + secrets.token_hex(2)
        login = unique("yomu")
        with self.svc.db.session() as s:
            row = Account(school_id=self.school_id, login_id=login, display_name="山田 花子",
                          password_hash=hash_password(password), grade="4", class_name="1",
                          **fields)
            s.add(row)
        return Student(row.id, self.school_code, login, password)

    def rp(self, host: str, **spec) -> RP:
        from idp.clients.registry import ClientSpec, register_client

        redirect = f"https://{host}/callback"
        row, secret = register_client(self.svc, ClientSpec(
            name=APP_NAME, redirect_uris=[redirect], post_logout_redirect_uris=[
                f"https://{host}/bye"], **spec), actor="test")
        return RP(row.client_id, secret, redirect, row.sector, "client_secret_basic")


def _to_login(browser: CardBrowser, rp: RP, **params) -> str:
    response, _ = browser.authorize(rp, **params)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response.headers["Location"]


def _follow(browser: CardBrowser, response, until: str):
    while response.status_code in (302, 303) and not response.headers["Location"].startswith(
            until):
        response = browser.c.get(response.headers["Location"])
    return response


def password_journey(crawl: Crawl) -> None:
    """Sign-in with its errors, consent, the my page, the password page, sign-out."""
    rp, student = crawl.rp(unique("yomu") + ".example.test",
                           scopes=["openid", "profile", "school"]), crawl.student()
    b = crawl.browser()
    login = b.c.get(_to_login(b, rp, scope="openid profile school"))
    html = crawl.keep("login", login)
    post = {"csrf_token": csrf_of(html), "txn": query_of(login.request.url)["txn"],
            "school": student.school_code}
    crawl.keep("login: nothing typed", b.c.post("/login", data=post), 400)
    crawl.keep("login: wrong password", b.c.post("/login", data={
        **post, "login_id": student.login_id, "password": "not it at all"}), 401)
    signed_in = b.password_login(login, student)
    consent = _follow(b, signed_in, "/consent")
    crawl.keep("consent", b.c.get(consent.headers["Location"]))
    back = _follow(b, b.consent(consent), rp.redirect_uri)
    assert back.headers["Location"].startswith(rp.redirect_uri)
    crawl.keep("my page", b.c.get("/account/"))
    form = crawl.keep("password page", b.c.get("/account/password"))
    crawl.keep("password page: not the same twice", b.c.post("/account/password", data={
        "csrf_token": csrf_of(form), "current": student.password,
        "new": "new words one two", "repeat": "new words two one"}), 400)
    crawl.keep("card password page without a card sign-in", b.c.get("/account/password/card"))
    withdrawn = b.c.post(f"/account/apps/{rp.client_id}/withdraw",
                         data={"csrf_token": csrf_of(form)})
    crawl.keep("my page after taking an app back", b.c.get(withdrawn.headers["Location"]))
    crawl.keep("sign-out question", b.c.get("/logout"))
    crawl.keep("signed out", b.c.post("/logout", data={
        "csrf_token": csrf_of(form), "confirm": "1"}))


def card_journey(crawl: Crawl) -> None:
    """A new card: the notice, the password sign-in that links it, the confirmation page
    (twice: the second card replaces the first), the my page with cards, the card page."""
    rp, student = crawl.rp(unique("kado") + ".example.test"), crawl.student()
    for attempt in ("first card", "second card"):
        b = crawl.browser()
        txn, _ = b.start_authorization(rp)
        crawl.keep(f"card page ({attempt})", b.c.get(f"/login/card?txn={txn}"))
        card = crawl.new_card()
        refused = b.use_card(card, txn)
        assert refused.status_code == 403, refused.get_json()
        login = b.c.get(refused.get_json()["redirect"])
        crawl.keep(f"login with a new card ({attempt})", login)
        offer = b.password_login(login, student)
        assert offer.headers["Location"].startswith("/login/link"), offer.headers
        page = crawl.keep(f"link the card ({attempt})", b.c.get(offer.headers["Location"]))
        linked = b.c.post(offer.headers["Location"], data={
            "csrf_token": csrf_of(page), "txn": txn, "card": query_of(
                offer.headers["Location"])["card"], "link": "1"})
        assert linked.status_code == 303, linked.get_data(as_text=True)[:300]
    crawl.keep("my page with cards", b.c.get("/account/"))
    card_sign_in = crawl.browser()
    done = card_sign_in.use_card(card)
    assert done.status_code == 200, done.get_json()
    crawl.keep("card password page", card_sign_in.c.get("/account/password/card"))
    crawl.keep("card page without an app", crawl.browser().c.get("/login/card"))
    crawl.keep("link page, nothing to link", b.c.get("/login/link"), 400)


def card_required_journey(crawl: Crawl) -> None:
    """An app that needs the card: the card page says so; after linking, it asks again;
    without card sign-in on the provider, the password page says so."""
    rp, student = crawl.rp(unique("hitsu") + ".example.test", required_acr=ACR_CARD), \
        crawl.student()
    b = crawl.browser()
    card_page = b.c.get(_to_login(b, rp))
    assert card_page.status_code == 303 and card_page.headers["Location"].startswith(
        "/login/card")
    crawl.keep("card page, the app needs the card", b.c.get(card_page.headers["Location"]))
    txn = query_of(card_page.headers["Location"])["txn"]
    refused = b.use_card(crawl.new_card(), txn)
    login = b.c.get(refused.get_json()["redirect"])
    crawl.keep("login with a new card, the app needs the card", login)
    offer = b.password_login(login, student)
    page = b.c.get(offer.headers["Location"]).get_data(as_text=True)
    linked = b.c.post(offer.headers["Location"], data={
        "csrf_token": csrf_of(page), "txn": txn, "card": query_of(
            offer.headers["Location"])["card"], "link": "1"})
    crawl.keep("card page after linking", b.c.get(linked.headers["Location"]))
    off = crawl.browser(crawl.app)
    crawl.keep("card page, card sign-in off, the app needs the card",
               off.c.get(_to_login(off, rp), follow_redirects=True))
    crawl.keep("card page, card sign-in off", off.c.get("/login/card"))
    crawl.keep("login, the app asked for the card", off.c.get("/login?reason=card_required"))


def other_pages(crawl: Crawl) -> None:
    """The tablet's code page, the first password, the reset, the graduate, the errors."""
    b = crawl.browser()
    for name, code in (("tablet code page", "ABCD-EFGH"), ("tablet code page, no code", "x")):
        crawl.keep(name, b.c.get(f"/login/card/pair/{code}", headers={"Accept": "text/html"}))
    first = crawl.student(must_change_password=True)
    b.password_login(b.c.get("/login"), first)
    form = crawl.keep("first password", b.c.get("/account/first-password"))
    crawl.keep("first password: not the same twice", b.c.post("/account/first-password", data={
        "csrf_token": csrf_of(form), "new": "new words one two", "repeat": "other words"}), 400)
    reset_journey(crawl)
    graduate_journey(crawl)
    b = crawl.browser()
    crawl.keep("home", b.c.get("/"))
    crawl.keep("help", b.c.get("/help/card-bridge"), audience="helper")
    crawl.keep("error: an unknown app", b.c.get(
        "/authorize?response_type=code&client_id=no-such-app&scope=openid"), 400)
    crawl.keep("error: no such page", b.c.get("/no-such-page"), 404)
    crawl.keep("error: the page was old", b.c.post("/login", data={"login_id": "x"}), 400)
    crawl.keep("error: the sign-in took too long", b.c.get("/consent?txn=gone"), 400)
    student = crawl.student()
    b.password_login(b.c.get("/login"), student)
    crawl.keep("error: a student on the guardian page", b.c.get("/account/children/"), 403)
    crawl.keep("error: a student on the code page", b.c.get("/account/totp/"), 403)
    rendered_only(crawl)


def rendered_only(crawl: Crawl) -> None:
    """The two pages no test request reaches on purpose: a bug, and a store that is down."""
    from flask import render_template

    with crawl.card_app.test_request_context("/?lang=ja"):
        for name, template, extra in (
                ("error: our problem", "error.html", {"error": "server_error"}),
                ("busy", "unavailable.html", {})):
            html = render_template(template, **extra)
            assert '<html lang="ja">' in html
            crawl.pages.append(Page(name, html))


def reset_journey(crawl: Crawl) -> None:
    from idp.accounts.codes import issue_reset_code
    from idp.accounts.roles import Actor

    student, b = crawl.student(), crawl.browser()
    form = crawl.keep("reset page", b.c.get("/account/reset"))
    post = {"csrf_token": csrf_of(form), "school": student.school_code,
            "login_id": student.login_id, "new": "new words one two",
            "repeat": "new words one two"}
    crawl.keep("reset page: a wrong code", b.c.post("/account/reset", data={
        **post, "code": "AAAA-BBBB-CCCC"}), 400)
    with crawl.svc.db.session() as db:
        code, _ = issue_reset_code(db, account_id=student.id, actor=Actor(
            account_id=student.id, role="school_admin", school_id=crawl.school_id))
    crawl.keep("reset done", b.c.post("/account/reset", data={**post, "code": code}))


def graduate_journey(crawl: Crawl) -> None:
    from idp.store.models import utcnow

    pupil = crawl.student(status="graduated", graduated_at=utcnow())
    rp, b = crawl.rp(unique("sotsu") + ".example.test"), crawl.browser()
    signed_in = b.password_login(b.c.get(_to_login(b, rp)), pupil)
    crawl.keep("graduate refused", b.c.get(signed_in.headers["Location"]), 403)
    crawl.keep("my page of a graduate", b.c.get("/account/"))


def young_child(crawl: Crawl) -> Student:
    today = date.today()
    return crawl.student(birth_date=date(today.year - 10, 1, 1))
