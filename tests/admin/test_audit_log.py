"""Audit log: filters, school scoping, CSV export, retention and purge."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from idp.accounts.roles import Actor
from idp.admin import audit_log


def _event(svc, **fields):
    from idp.store.models import AuditEvent

    with svc.db.session() as s:
        row = AuditEvent(**fields)
        s.add(row)
    return row


def test_filters_by_account_client_event_and_date(client, svc, platform_admin, token_of,
                                                  make_student):
    from idp.store.models import utcnow

    student = make_student()
    old = utcnow() - timedelta(days=10)
    _event(svc, event="consent.granted", account_id=student.id, client_id="c-audit")
    _event(svc, event="consent.withdrawn", account_id=student.id, client_id="c-audit", at=old)
    headers = token_of(platform_admin)

    def events(**query):
        response = client.get("/api/admin/audit", query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        return [e["event"] for e in response.get_json()["events"]]

    assert sorted(events(account_id=student.id)) == ["consent.granted", "consent.withdrawn"]
    assert events(account_id=student.id, event="consent.granted") == ["consent.granted"]
    assert sorted(events(client_id="c-audit", event="consent.")) == [
        "consent.granted", "consent.withdrawn"]
    day = (old.date()).isoformat()
    assert events(account_id=student.id, since=day, until=day) == ["consent.withdrawn"]
    bad = client.get("/api/admin/audit?since=yesterday", headers=headers)
    assert bad.status_code == 400


def test_school_admin_sees_only_own_school_events(client, svc, make_account, other_school,
                                                  token_of):
    mine = make_account("student", totp=False)
    theirs = make_account("student", in_school=other_school, totp=False)
    _event(svc, event="login.password", account_id=mine.id)
    _event(svc, event="login.password", account_id=theirs.id)
    headers = token_of(make_account("school_admin"))
    seen = {e["account_id"] for e in client.get(
        "/api/admin/audit?event=login.password&limit=500", headers=headers)
        .get_json()["events"]}
    assert mine.id in seen and theirs.id not in seen


def test_csv_export_is_excel_friendly_and_safe(client, svc, platform_admin, token_of):
    _event(svc, event="test.csv", client_id="csv-client", details={"note": "=HYPERLINK()"})
    response = client.get("/api/admin/audit.csv?client_id=csv-client",
                          headers=token_of(platform_admin))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["id", "at", "event"] and rows[1][2] == "test.csv"
    assert rows[1][-1].startswith("{")  # JSON details, never a formula


def test_csv_cells_that_look_like_formulas_are_defused():
    assert audit_log._cell("=cmd()") == "'=cmd()"
    assert audit_log._cell("@SUM(1)") == "'@SUM(1)"
    assert audit_log._cell("plain") == "plain"


def test_retention_setting_and_purge(client, svc, platform_admin, token_of):
    from idp.store.models import AuditEvent, utcnow

    headers = token_of(platform_admin)
    assert client.put("/api/admin/settings/audit-retention", json={"days": 5},
                      headers=headers).status_code == 400
    assert client.put("/api/admin/settings/audit-retention", json={"days": 30},
                      headers=headers).status_code == 200
    assert client.get("/api/admin/settings/audit-retention",
                      headers=headers).get_json() == {"days": 30}
    _event(svc, event="test.ancient", at=utcnow() - timedelta(days=31))
    recent = _event(svc, event="test.recent", at=utcnow() - timedelta(days=29))
    # Records the event log kept aside (idp.event_log) follow the same retention.
    from idp.store.models import RefusedEvent

    with svc.db.session() as s:
        s.add_all([RefusedEvent(record_key="old-" + platform_admin.id, raw="{}", error="x",
                                at=utcnow() - timedelta(days=31)),
                   RefusedEvent(record_key="new-" + platform_admin.id, raw="{}", error="x",
                                at=utcnow() - timedelta(days=29))])
    purged = client.post("/api/admin/audit/purge", headers=headers).get_json()
    assert purged["deleted"] >= 1
    with svc.db.session() as s:
        assert s.query(AuditEvent).filter_by(event="test.ancient").count() == 0
        assert s.get(AuditEvent, recent.id).event == "test.recent"
        kept = {r.record_key for r in s.query(RefusedEvent).filter(
            RefusedEvent.record_key.like("%" + platform_admin.id))}
        assert kept == {"new-" + platform_admin.id}
        audit_log.set_retention_days(s, Actor(platform_admin.id, "platform_admin",
                                              platform_admin.school_id),
                                     audit_log.DEFAULT_RETENTION_DAYS)


def test_cli_purge(app, svc, monkeypatch):
    from click.testing import CliRunner

    from idp.cli import Ctx, cli
    from idp.cli import admin as admin_cli
    from idp.store.models import AuditEvent, utcnow

    admin_cli.register(cli)
    monkeypatch.setattr(Ctx, "app", property(lambda self: app))
    _event(svc, event="test.cli_ancient", at=utcnow() - timedelta(days=5000))
    result = CliRunner().invoke(cli, ["admin", "purge-audit"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["deleted"] >= 1
    with svc.db.session() as s:
        # By event name: SQLite may reuse a deleted row's id for the purge's own event.
        assert s.query(AuditEvent).filter_by(event="test.cli_ancient").count() == 0
