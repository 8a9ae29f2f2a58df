"""The admin home page (issue 12): is it working? People per school, linked cards, today's
sign-ins by method and Japan hour (a server-drawn SVG), refusals and their reasons, apps,
revocation data, pending transfers — a school admin sees their own school's only."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from idp.accounts.roles import Actor
from idp.admin import dashboard
from tests.admin.conftest import admin_sign_in
from tests.conftest import unique


def _person(svc, school, role: str = "student", name: str = "テスト 太郎") -> str:
    from idp.store.models import Account

    with svc.db.session() as s:
        row = Account(school_id=school.id, login_id=unique("p"), display_name=name, role=role)
        s.add(row)
    return row.id


def _card(svc, account_id: str, status: str = "active") -> None:
    from idp.store.models import CardBinding, utcnow

    with svc.db.session() as s:
        s.add(CardBinding(account_id=account_id, issuer="CN=Test", serial=secrets.token_hex(8),
                          certificate_sha256=secrets.token_hex(32), status=status,
                          not_after=utcnow() + timedelta(days=30)))


def _event(svc, **fields) -> None:
    from idp.store.models import AuditEvent

    with svc.db.session() as s:
        s.add(AuditEvent(**fields))


def test_figures_per_school_and_sign_ins_by_japan_hour(svc, new_school, make_account):
    school = new_school("ひがし小学校")
    admin = make_account("school_admin", in_school=school)
    pupils = [_person(svc, school) for _ in range(3)]
    _person(svc, school, "teacher")
    _card(svc, pupils[0])
    _card(svc, pupils[0])  # two cards, one person
    _card(svc, pupils[1], status="revoked")  # a revoked card is no linked card
    # 2031-05-07 in Japan runs from 2031-05-06 15:00 to 2031-05-07 15:00 UTC.
    now = datetime(2031, 5, 7, 1, 30)
    for at, event in ((datetime(2031, 5, 6, 15, 30), "login.password"),   # 00:30 JST
                      (datetime(2031, 5, 7, 1, 10), "login.card"),        # 10:10 JST
                      (datetime(2031, 5, 7, 1, 20), "login.card"),
                      (datetime(2031, 5, 6, 14, 59), "login.password"),   # 5/6 23:59 JST
                      (datetime(2031, 5, 7, 15, 0), "login.password")):   # 5/8 00:00 JST
        _event(svc, event=event, account_id=pupils[2], school_id=school.id, at=at)
    _event(svc, event="login.password", outcome="refused", account_id=pupils[1],
           at=datetime(2031, 5, 7, 0, 0), details={"reason": "bad_credentials"})
    _event(svc, event="login.card", outcome="refused", account_id=pupils[1],
           school_id=school.id, at=datetime(2031, 5, 7, 0, 5),
           details={"reason": "binding_revoked"})
    _event(svc, event="login.card", outcome="not_linked", school_id=school.id,
           at=datetime(2031, 5, 7, 0, 6), details={"serial": "01"})
    with svc.db.session() as db:
        board = dashboard.dashboard(db, Actor(admin.id, "school_admin", school.id), now=now)
    assert board.day.isoformat() == "2031-05-07"
    [figures] = board.schools
    assert (figures.students, figures.staff, figures.with_card) == (3, 2, 1)  # staff: +admin
    assert board.by_hour["password"][0] == 1 and board.totals["password"] == 1
    assert board.by_hour["card"][10] == 2 and board.totals["card"] == 2
    assert sorted(board.refusals) == [("login.card", "binding_revoked", 1),
                                      ("login.card", "not_linked", 1),
                                      ("login.password", "bad_credentials", 1)]
    chart = dashboard.chart_bars(board.by_hour)
    assert {(b["method"], b["hour"], b["count"]) for b in chart["bars"]} == {
        ("password", 0, 1), ("card", 10, 2)}
    tallest = max(chart["bars"], key=lambda b: b["count"])
    assert tallest["y"] + tallest["height"] == chart["baseline"]


def test_home_page_shows_the_figures_and_a_chart_without_script(app, svc, platform_admin,
                                                                 school, other_school):
    from idp.store.models import utcnow

    pupil = _person(svc, school)
    _event(svc, event="login.password", account_id=pupil, school_id=school.id, at=utcnow())
    _event(svc, event="login.password", outcome="refused", account_id=pupil,
           at=utcnow(), details={"reason": "bad_credentials"})
    c = app.test_client()
    admin_sign_in(c, platform_admin)
    page = c.get("/admin/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'id="school-{school.code}"' in html and f'id="school-{other_school.code}"' in html
    assert "<svg" in html and 'class="bar bar-password"' in html
    assert "IDかパスワードがちがう" in html  # the reason in Japanese
    assert "全体の管理者" in html  # the role in Japanese, not platform_admin
    assert 'id="pending-transfers"' in html and 'id="apps-count"' in html
    assert 'id="revocation"' in html
    # CSP-safe: no inline script, no style attribute (style-src 'self').
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert " style=" not in html


def test_school_admin_sees_no_other_schools_numbers(app, svc, new_school, make_account):
    mine, theirs = new_school("きた小学校"), new_school("みなと小学校")
    admin = make_account("school_admin", in_school=mine)
    other_pupil = _person(svc, theirs, name="となりの 児童")
    _card(svc, other_pupil)
    from idp.store.models import utcnow

    for _ in range(3):
        _event(svc, event="login.password", outcome="refused", account_id=other_pupil,
               school_id=theirs.id, at=utcnow(), details={"reason": "bad_credentials"})
        _event(svc, event="login.card", account_id=other_pupil, school_id=theirs.id,
               at=utcnow())
    c = app.test_client()
    admin_sign_in(c, admin)
    html = c.get("/admin/").get_data(as_text=True)
    assert f'id="school-{mine.code}"' in html
    assert theirs.code not in html and "みなと小学校" not in html
    assert 'id="no-refusals"' in html
    assert re.search(r'id="total-card">.*?<strong>0回</strong>', html)
    with svc.db.session() as db:
        board = dashboard.dashboard(db, Actor(admin.id, "school_admin", mine.id))
    assert [s.code for s in board.schools] == [mine.code]
    assert board.totals == {"password": 0, "card": 0, "admin": 1}  # their own sign-in only


def test_every_count_on_the_home_says_what_it_counts(app, svc, new_school, make_account):
    """「3人」「1回」「0件」, not a bare 「3」 (a Japanese reader asks 「3なに?」); English reads a
    number under its heading as it is."""
    from idp.store.models import utcnow

    school = new_school("かぞえ小学校")
    admin = make_account("school_admin", in_school=school)
    pupils = [_person(svc, school) for _ in range(3)]
    _card(svc, pupils[0])
    _event(svc, event="login.password", outcome="refused", account_id=pupils[1],
           school_id=school.id, at=utcnow(), details={"reason": "bad_credentials"})
    c = app.test_client()
    admin_sign_in(c, admin)
    html = c.get("/admin/?lang=ja").get_data(as_text=True)
    row = re.search(rf'<tr id="school-{school.code}">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'<td class="number">([^<]*)</td>', row) == ["3人", "1人", "0人", "1人"]
    refusals = re.search(r'<table id="refusals-table">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r'<td class="number">([^<]*)</td>', refusals) == ["1回"]
    assert re.search(r'id="total-admin">.*?<strong>1回</strong>', html)
    assert re.search(r'id="apps-count">使えるアプリ: \d+件\(停止中: \d+件\)', html)
    assert re.search(r'id="pending-transfers">返事を待っている転校: 0件', html)
    english = c.get("/admin/?lang=en").get_data(as_text=True)
    assert re.search(r'id="total-admin">.*?<strong>1</strong>', english)
    row = re.search(rf'<tr id="school-{school.code}">(.*?)</tr>', english, re.S).group(1)
    assert re.findall(r'<td class="number">([^<]*)</td>', row) == ["3", "1", "0", "1"]


def test_home_shows_crl_age_with_card_sign_in_on(crl_app, make_account):
    admin = make_account("platform_admin")
    c = crl_app.test_client()
    admin_sign_in(c, admin)
    html = c.get("/admin/").get_data(as_text=True)
    assert 'id="revocation-mode"' in html and 'id="crl-table"' in html
    assert 'id="ocsp-status"' in html


def test_home_needs_an_admin(app, make_account):
    c = app.test_client()
    assert c.get("/admin/").status_code == 303  # to the sign-in
    teacher = make_account("teacher")
    admin_sign_in(c, teacher)
    assert c.get("/admin/").status_code == 403
