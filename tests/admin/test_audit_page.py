"""The audit log page (issue 12): names and login ids beside ids for the accounts the admin
may see, Japan times, a date picker that filters by the Japan day, and no 500 for any
date."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.admin.conftest import admin_sign_in
from tests.conftest import unique


def _person(svc, school, name: str, role: str = "student"):
    from idp.store.models import Account

    with svc.db.session() as s:
        row = Account(school_id=school.id, login_id=unique("au"), display_name=name, role=role)
        s.add(row)
    return row


def _event(svc, **fields) -> None:
    from idp.store.models import AuditEvent

    with svc.db.session() as s:
        s.add(AuditEvent(**fields))


def test_names_and_japan_times_for_a_platform_admin(app, svc, school, platform_admin):
    pupil = _person(svc, school, "佐藤 みどり")
    # 16:05 UTC on 10 March is 01:05 on 11 March in Japan.
    _event(svc, event="account.locked", account_id=pupil.id, actor=platform_admin.id,
           school_id=school.id, at=datetime(2026, 3, 10, 16, 5, 7))
    c = app.test_client()
    admin_sign_in(c, platform_admin)
    page = c.get("/admin/audit", query_string={"account_id": pupil.id})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "2026-03-11 01:05:07" in html and "日本時間" in html
    assert "佐藤 みどり" in html and pupil.login_id in html and pupil.id in html
    assert platform_admin.login_id in html  # who did it, by name and login id too
    assert "アカウントのロック" in html  # the event in Japanese, its code beside it
    assert 'type="date"' in html and 'class="table-scroll"' in html


def test_the_date_picker_filters_by_the_japan_day(app, svc, school, platform_admin):
    pupil = _person(svc, school, "日付 テスト")
    _event(svc, event="account.updated", account_id=pupil.id, school_id=school.id,
           at=datetime(2026, 3, 10, 16, 5))  # 11 March in Japan, 10 March in UTC
    c = app.test_client()
    admin_sign_in(c, platform_admin)

    def found(day: str) -> bool:
        html = c.get("/admin/audit", query_string={"account_id": pupil.id, "since": day,
                                                    "until": day}).get_data(as_text=True)
        return "日付 テスト" in html

    assert found("2026-03-11") and not found("2026-03-10")
    csv = c.get("/admin/audit.csv", query_string={"account_id": pupil.id,
                                                  "since": "2026-03-11"})
    assert pupil.id in csv.get_data(as_text=True)


@pytest.mark.parametrize("since", ["2026-02-30", "0001-01-01", "9999-12-31", "yesterday",
                                   "2026-3-1", "x" * 500, "２０２６-０３-１１"])
def test_bad_dates_are_a_readable_400_never_a_500(app, platform_admin, token_of, since):
    c = app.test_client()
    admin_sign_in(c, platform_admin)
    page = c.get("/admin/audit", query_string={"since": since})
    assert page.status_code == 400 and 'id="error"' in page.get_data(as_text=True)
    assert c.get("/admin/audit", query_string={"until": since}).status_code == 400
    csv = c.get("/admin/audit.csv", query_string={"until": since})
    # The CSV link of a search that cannot be done goes back to the page, which says why.
    assert csv.status_code == 303 and "/admin/audit?" in csv.headers["Location"]
    assert c.get(csv.headers["Location"]).status_code == 400
    api = app.test_client().get("/api/admin/audit", query_string={"until": since},
                                headers=token_of(platform_admin))
    assert api.status_code == 400


def test_school_admin_sees_names_of_their_own_school_only(app, svc, school, other_school,
                                                         make_account):
    admin = make_account("school_admin")
    mine = _person(svc, school, "自校の 児童")
    theirs = _person(svc, other_school, "他校の 児童")
    their_admin = make_account("school_admin", in_school=other_school)
    # A record in this school's log that names an account of the other school (as a
    # transfer does): the ids stay, the names and login ids of the other school do not.
    _event(svc, event="account.updated", account_id=theirs.id, actor=their_admin.id,
           school_id=school.id)
    _event(svc, event="account.updated", account_id=mine.id, actor=admin.id,
           school_id=school.id)
    c = app.test_client()
    admin_sign_in(c, admin)
    html = c.get("/admin/audit", query_string={"event": "account.updated"}).get_data(
        as_text=True)
    assert theirs.id in html and their_admin.id in html
    assert "他校の 児童" not in html and theirs.login_id not in html
    assert their_admin.login_id not in html and other_school.code not in html
    assert "自校の 児童" in html and mine.login_id in html
    # Asking for the other school outright is refused.
    assert c.get("/admin/audit", query_string={"school": other_school.code}).status_code == 403


def test_retention_form_needs_csrf(app, platform_admin):
    c = app.test_client()
    admin_sign_in(c, platform_admin)
    assert c.post("/admin/audit/purge", data={}).status_code == 400
