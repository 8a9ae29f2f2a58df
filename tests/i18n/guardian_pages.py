"""The guardian steps of the journey, for tests/i18n/student_pages.py's collection: the
child's consent page while a guardian must answer (asked, declined, no guardian at all),
the guardian's own page with a request and then with the child's app, and the guardian's
確認コード pages (turning it on, then the code after the password)."""

from __future__ import annotations

import re

import pyotp

from tests.conftest import Student, csrf_of, redeem
from tests.i18n.student_pages import Crawl, _follow, _to_login, young_child

SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')


def guardian(crawl: Crawl, child: Student) -> Student:
    from idp.signin.passwords import hash_password
    from idp.store.models import Account, GuardianLink

    password = "guardian long words 42"
    with crawl.svc.db.session() as s:
        row = Account(school_id=crawl.school_id, login_id="o-" + child.login_id,
                      display_name="山田 はるか", role="guardian",
                      password_hash=hash_password(password))
        s.add(row)
        s.flush()
        s.add(GuardianLink(guardian_id=row.id, child_id=child.id, created_by="test"))
    return Student(row.id, crawl.school_code, row.login_id, password)


def _press(b, consent_url: str, button: str):
    html = b.c.get(consent_url).get_data(as_text=True)
    txn = re.search(r'name="txn" type="hidden" value="([^"]*)"', html).group(1)
    return b.c.post("/consent", data={"csrf_token": csrf_of(html), "txn": txn, button: "1"})


def _consent_url(crawl: Crawl, b, rp, child: Student) -> tuple[str, str]:
    response, verifier = b.authorize(rp, scope="openid profile")
    if not response.headers["Location"].startswith("/consent"):
        response = _follow(b, b.password_login(b.c.get(response.headers["Location"]), child),
                           "/consent")
    return response.headers["Location"], verifier


def guardian_journey(crawl: Crawl) -> None:
    child = young_child(crawl)
    parent = guardian(crawl, child)
    rp, other = crawl.rp("kodomo-1.example.test"), crawl.rp("kodomo-2.example.test")
    b = crawl.browser()
    consent, verifier = _consent_url(crawl, b, rp, child)
    crawl.keep("consent: ask a guardian", b.c.get(consent))
    crawl.keep("consent: a child cannot say yes alone", _press(b, consent, "allow"), 403)
    asked = crawl.keep("consent: the guardian was asked", _press(b, consent, "ask"))
    again = re.search(r'id="check-again" href="([^"]+)"', asked).group(1).replace("&amp;", "&")
    phone = crawl.browser()
    phone.password_login(phone.c.get("/login"), parent)
    crawl.keep("guardian's my page", phone.c.get("/account/"))
    page = crawl.keep("guardian page with a request", phone.c.get("/account/children/"),
                      audience="guardian")
    (request_id,) = re.findall(r'id="request-([0-9a-f]+)"', page)
    answered = phone.c.post(f"/account/children/requests/{request_id}/approve",
                            data={"csrf_token": csrf_of(page)})
    crawl.keep("guardian page after yes", phone.c.get(answered.headers["Location"]),
               audience="guardian")
    done = _follow(b, b.c.get(again), rp.redirect_uri)
    code = re.search(r"code=([^&]+)", done.headers["Location"]).group(1)
    assert redeem(b.c, rp, code, verifier).status_code == 200
    crawl.keep("guardian page with the child's app", phone.c.get("/account/children/"),
               audience="guardian")
    second, _ = _consent_url(crawl, b, other, child)
    _press(b, second, "ask")
    page = phone.c.get("/account/children/").get_data(as_text=True)
    (request_id,) = re.findall(r'id="request-([0-9a-f]+)"', page)
    phone.c.post(f"/account/children/requests/{request_id}/decline",
                 data={"csrf_token": csrf_of(page)})
    crawl.keep("consent: the guardian said no", b.c.get(second))
    totp_journey(crawl, phone, parent)
    alone = crawl.browser()
    lonely, _ = _consent_url(crawl, alone, rp, young_child(crawl))
    crawl.keep("consent: no guardian to ask", alone.c.get(lonely))


def totp_journey(crawl: Crawl, phone, parent: Student) -> None:
    page = crawl.keep("code page, off", phone.c.get("/account/totp/"), audience="guardian")
    started = phone.c.post("/account/totp/start", data={
        "csrf_token": csrf_of(page), "current": parent.password})
    html = crawl.keep("code page, starting", started, audience="guardian")
    secret = pyotp.TOTP(SECRET.search(html).group(1))
    confirmed = phone.c.post("/account/totp/confirm", data={
        "csrf_token": csrf_of(html), "code": secret.now()})
    crawl.keep("code page, on", phone.c.get(confirmed.headers["Location"]), audience="guardian")
    b = crawl.browser()
    asked = b.password_login(b.c.get(_to_login(b, crawl.rp("hogosha.example.test"))), parent)
    form = crawl.keep("code after the password", b.c.get(asked.headers["Location"]),
                      audience="guardian")
    crawl.keep("code after the password: wrong code", b.c.post(asked.headers["Location"], data={
        "csrf_token": csrf_of(form), "code": "000000" if secret.now() != "000000" else "111111"}),
        401, audience="guardian")
