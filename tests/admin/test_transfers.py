"""Moving an account to another school (issue 11): the handshake (offer → accept/decline),
the platform's one-step move, the same pairwise ``sub`` afterwards, and the abuse cases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from idp.store.models import Account, AccountTransfer, AuditEvent, Consent, utcnow
from tests.admin.conftest import admin_sign_in, form_token, own_ip
from tests.card.test_card_flow import id_token_claims
from tests.conftest import Browser, Student, csrf_of


def transfer(client, headers, account_id: str, **body):
    return client.post(f"/api/admin/accounts/{account_id}/transfer", json=body,
                       headers=headers)


def account_row(svc, account_id: str) -> Account:
    with svc.db.session() as s:
        row = s.get(Account, account_id)
        s.expunge(row)
        return row


def sign_in_sub(app, svc, rp, who: Student, scope: str = "openid school") -> dict:
    browser = Browser(own_ip(app.test_client()))
    query, verifier = browser.sign_in_and_authorize(rp, who, scope=scope)
    return id_token_claims(browser.c, svc, rp, query, verifier)


def test_offer_then_accept_moves_the_account_and_every_app_keeps_its_sub(
        app, svc, client, make_student, make_rp, school, receiving, school_admin,
        receiving_admin, token_of):
    student = make_student()
    math, kanji = make_rp(host="math.example.test"), make_rp(host="kanji.example.test")
    before = {rp.client_id: sign_in_sub(app, svc, rp, student) for rp in (math, kanji)}
    assert before[math.client_id]["school_code"] == school.code

    offered = transfer(client, token_of(school_admin), student.id,
                       school_code=receiving.code, login_id="hanako.y")
    assert offered.status_code == 201, offered.get_json()
    body = offered.get_json()
    assert body["status"] == "offered" and body["to_school_code"] == receiving.code
    assert account_row(svc, student.id).school_id == school.id  # nothing moved yet

    listed = client.get("/api/admin/transfers", headers=token_of(receiving_admin)).get_json()
    [incoming] = [t for t in listed["transfers"] if t["account_id"] == student.id]
    assert incoming["display_name"] == "山田 花子" and incoming["to_login_id"] == "hanako.y"

    accepted = transfer(client, token_of(receiving_admin), student.id,
                        school_code=receiving.code)
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["status"] == "completed"
    assert accepted.get_json()["account"]["school_code"] == receiving.code
    row = account_row(svc, student.id)
    assert (row.id, row.school_id, row.login_id, row.class_name) == \
        (student.id, receiving.id, "hanako.y", "")

    moved = Student(student.id, receiving.code, "hanako.y", student.password)
    after = {rp.client_id: sign_in_sub(app, svc, rp, moved) for rp in (math, kanji)}
    for rp in (math, kanji):
        assert after[rp.client_id]["sub"] == before[rp.client_id]["sub"]
        assert after[rp.client_id]["school_code"] == receiving.code
        assert after[rp.client_id]["school_name"] == "みなみ小学校"
    with svc.db.session() as s:  # the consents stayed: no new "yes" was asked
        assert len(s.scalars(select(Consent).where(Consent.account_id == student.id)).all()) == 2


def test_the_old_login_at_the_old_school_stops_and_old_tokens_end(
        app, svc, client, make_student, rp, school, receiving, platform_admin, token_of):
    student = make_student()
    browser = Browser(own_ip(app.test_client()))
    query, verifier = browser.sign_in_and_authorize(rp, student)
    from tests.conftest import redeem

    tokens = redeem(browser.c, rp, query["code"], verifier).get_json()
    assert browser.c.get("/account/").status_code == 200  # signed in

    moved = transfer(client, token_of(platform_admin), student.id, school_code=receiving.code)
    assert moved.status_code == 200 and moved.get_json()["status"] == "completed"

    # The session ended, the app's tokens stop, the old name no longer signs in.
    assert browser.c.get("/account/").status_code == 303
    userinfo = client.get("/userinfo",
                          headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert userinfo.status_code == 401
    fresh = Browser(own_ip(app.test_client()))
    response, _ = fresh.authorize(rp)
    refused = fresh.password_login(fresh.follow_to_login(response), student)
    assert refused.status_code != 303
    assert sign_in_sub(app, svc, rp, Student(student.id, receiving.code, student.login_id,
                                             student.password), scope="openid")["sub"]


def test_both_schools_audit_logs_show_the_transfer(
        svc, client, make_student, receiving, school_admin, receiving_admin, token_of):
    student = make_student()
    assert transfer(client, token_of(school_admin), student.id,
                    school_code=receiving.code).status_code == 201
    assert transfer(client, token_of(receiving_admin), student.id,
                    school_code=receiving.code).status_code == 200
    for admin in (school_admin, receiving_admin):
        events = client.get("/api/admin/audit", query_string={"event": "account.transferred"},
                            headers=token_of(admin)).get_json()["events"]
        mine = [e for e in events if e["account_id"] == student.id]
        assert len(mine) == 1 and mine[0]["school_id"] == admin.school_id
        offers = client.get("/api/admin/audit", query_string={"event": "transfer.offered"},
                            headers=token_of(admin)).get_json()["events"]
        assert [e for e in offers if e["account_id"] == student.id]


def test_the_students_page_shows_the_move_in_japan_time(
        app, svc, make_student, school, receiving, platform_admin, client, token_of):
    student = make_student()
    assert transfer(client, token_of(platform_admin), student.id,
                    school_code=receiving.code).status_code == 200
    with svc.db.session() as s:  # just before midnight UTC is the next morning in Japan
        row = s.scalar(select(AccountTransfer).where(AccountTransfer.account_id == student.id))
        row.decided_at = row.decided_at.replace(year=2026, month=3, day=31, hour=23, minute=30)
    browser = Browser(own_ip(app.test_client()))
    moved = Student(student.id, receiving.code, student.login_id, student.password)
    page = browser.c.get("/login")
    assert browser.password_login(page, moved).status_code == 303
    html = browser.c.get("/account/").get_data(as_text=True)
    assert "2026-04-01に、テスト小学校からみなみ小学校にうつりました。" in html
    english = browser.c.get("/account/?lang=en")
    assert "moved from テスト小学校 to みなみ小学校" in english.get_data(as_text=True)


def test_cached_account_rows_serve_the_new_school(svc, make_student, school, receiving,
                                                  platform_admin, client, token_of):
    student = make_student()
    assert svc.accounts.get(student.id).school.code == school.code  # now cached
    assert transfer(client, token_of(platform_admin), student.id,
                    school_code=receiving.code).status_code == 200
    cached = svc.accounts.get(student.id)
    assert cached.school.code == receiving.code and cached.school_id == receiving.id


def test_a_login_id_clash_at_the_receiving_school_is_a_clear_409(
        svc, client, make_student, make_account, receiving, platform_admin, token_of):
    student = make_student()
    resident = make_account("student", in_school=receiving)
    clash = transfer(client, token_of(platform_admin), student.id,
                     school_code=receiving.code, login_id=resident.login_id.upper())
    assert clash.status_code == 409 and clash.get_json()["error"] == "login_id_taken"
    assert account_row(svc, student.id).school_id != receiving.id
    ok = transfer(client, token_of(platform_admin), student.id, school_code=receiving.code,
                  login_id="new.login")
    assert ok.status_code == 200 and ok.get_json()["account"]["login_id"] == "new.login"


def test_the_receiver_may_choose_the_login_id_when_accepting(
        svc, client, make_student, receiving, school_admin, receiving_admin, token_of):
    student = make_student()
    transfer(client, token_of(school_admin), student.id, school_code=receiving.code,
             login_id="proposed")
    accepted = transfer(client, token_of(receiving_admin), student.id,
                        school_code=receiving.code, login_id="chosen")
    assert accepted.status_code == 200
    assert account_row(svc, student.id).login_id == "chosen"


def test_a_reset_code_from_the_old_school_stops_working(
        app, svc, client, make_student, school, receiving, school_admin, platform_admin,
        token_of):
    student = make_student()
    code = client.post(f"/api/admin/accounts/{student.id}/reset-code",
                       headers=token_of(school_admin)).get_json()["reset_code"]
    assert transfer(client, token_of(platform_admin), student.id,
                    school_code=receiving.code).status_code == 200
    browser = own_ip(app.test_client())
    page = browser.get("/account/reset")
    response = browser.post("/account/reset", data={
        "csrf_token": csrf_of(page.get_data(as_text=True)), "school": receiving.code,
        "login_id": student.login_id, "code": code, "new": "a brand new passphrase 1",
        "repeat": "a brand new passphrase 1"})
    assert response.status_code == 400


# ----------------------------------------------------------------------------- abuse
def test_a_school_admin_cannot_offer_a_pupil_of_another_school(
        svc, client, make_student, make_account, other_school, receiving, school_admin,
        token_of):
    foreign = make_account("student", in_school=other_school)
    refused = transfer(client, token_of(school_admin), foreign.id, school_code=receiving.code)
    assert refused.status_code == 403
    assert account_row(svc, foreign.id).school_id == other_school.id
    with svc.db.session() as s:
        assert s.scalar(select(AccountTransfer).where(
            AccountTransfer.account_id == foreign.id)) is None


def test_a_school_admin_cannot_move_an_admin(client, make_account, receiving, school_admin,
                                             token_of):
    colleague = make_account("school_admin")
    refused = transfer(client, token_of(school_admin), colleague.id,
                       school_code=receiving.code)
    assert refused.status_code == 403


def test_a_school_admin_moved_by_the_platform_arrives_as_a_teacher(
        svc, client, make_account, receiving, platform_admin, token_of):
    """The receiving school never chose this person as its admin: moved by the platform,
    they arrive as a teacher, and their admin API tokens from the old school stop."""
    from tests.admin.conftest import api_token_for

    moving = make_account("school_admin")
    their_token = api_token_for(svc, moving.id)
    headers = {"Authorization": "Bearer " + their_token}
    assert client.get("/api/admin/accounts", headers=headers).status_code == 200
    moved = transfer(client, token_of(platform_admin), moving.id, school_code=receiving.code)
    assert moved.status_code == 200, moved.get_json()
    row = account_row(svc, moving.id)
    assert (row.school_id, row.role) == (receiving.id, "teacher")
    assert client.get("/api/admin/accounts", headers=headers).status_code == 401
    svc.events.flush()  # the lost admin role is in both schools' logs, not only the move
    with svc.db.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.event == "account.transferred",
                                                    AuditEvent.account_id == moving.id)).all()
    assert len(events) == 2 and all(
        (e.details["role_before"], e.details["role"]) == ("school_admin", "teacher")
        for e in events)


def test_an_offer_cannot_be_accepted_by_a_third_school(
        svc, client, make_student, make_account, new_school, receiving, school_admin,
        token_of):
    student = make_student()
    third = make_account("school_admin", in_school=new_school("きた小学校"))
    offered = transfer(client, token_of(school_admin), student.id,
                       school_code=receiving.code).get_json()
    # Naming their own school finds no offer; naming the addressed school is not theirs.
    own = transfer(client, token_of(third), student.id, school_code=third.school_code)
    assert own.status_code == 404
    addressed = transfer(client, token_of(third), student.id, school_code=receiving.code)
    assert addressed.status_code == 403
    declined = client.post(f"/api/admin/transfers/{offered['id']}/decline",
                           headers=token_of(third))
    assert declined.status_code == 404
    listed = client.get("/api/admin/transfers", headers=token_of(third)).get_json()
    assert all(t["id"] != offered["id"] for t in listed["transfers"])
    assert account_row(svc, student.id).school_id != receiving.id


def test_the_sending_admin_cannot_accept_their_own_offer(
        app, svc, client, make_student, school, receiving, school_admin, token_of):
    student = make_student()
    offered = transfer(client, token_of(school_admin), student.id,
                       school_code=receiving.code).get_json()
    again = transfer(client, token_of(school_admin), student.id, school_code=receiving.code)
    assert again.status_code == 201 and again.get_json()["status"] == "offered"
    assert account_row(svc, student.id).school_id == school.id
    with svc.db.session() as s:  # the new offer replaced the first
        assert s.get(AccountTransfer, offered["id"]).status == "cancelled"
    admin_page = own_ip(app.test_client())
    admin_sign_in(admin_page, school_admin)
    token = form_token(admin_page, "/admin/transfers")
    page = admin_page.post(f"/admin/transfers/{again.get_json()['id']}/accept",
                           data={"csrf_token": token})
    assert page.status_code == 403
    assert account_row(svc, student.id).school_id == school.id


@pytest.mark.parametrize("state", ["expired", "declined", "cancelled", "used"])
def test_an_offer_no_longer_pending_cannot_be_accepted(
        app, svc, client, make_student, receiving, school_admin, receiving_admin, token_of,
        state):
    student = make_student()
    offered = transfer(client, token_of(school_admin), student.id,
                       school_code=receiving.code).get_json()
    if state == "expired":
        with svc.db.session() as s:
            s.get(AccountTransfer, offered["id"]).expires_at = utcnow() - timedelta(seconds=1)
    elif state == "declined":
        assert client.post(f"/api/admin/transfers/{offered['id']}/decline",
                           headers=token_of(receiving_admin)).get_json()["status"] == "declined"
    elif state == "cancelled":
        assert client.post(f"/api/admin/transfers/{offered['id']}/decline",
                           headers=token_of(school_admin)).get_json()["status"] == "cancelled"
    else:
        assert transfer(client, token_of(receiving_admin), student.id,
                        school_code=receiving.code).status_code == 200
    where = account_row(svc, student.id).school_id
    accepted = transfer(client, token_of(receiving_admin), student.id,
                        school_code=receiving.code)
    expected = {"expired": (409, "offer_expired"), "declined": (409, "offer_not_pending"),
                "cancelled": (409, "offer_not_pending"), "used": (400, "same_school")}[state]
    assert (accepted.status_code, accepted.get_json()["error"]) == expected
    page = own_ip(app.test_client())
    admin_sign_in(page, receiving_admin)
    by_id = page.post(f"/admin/transfers/{offered['id']}/accept",
                      data={"csrf_token": form_token(page, "/admin/accounts/new")})
    assert by_id.status_code == 409
    assert account_row(svc, student.id).school_id == where
    with svc.db.session() as s:
        moves = s.scalars(select(AuditEvent).where(AuditEvent.event == "account.transferred",
                                                   AuditEvent.account_id == student.id)).all()
    assert len(moves) == (2 if state == "used" else 0)  # one per school, once


def test_unknown_school_code_is_a_clear_400(client, make_student, school_admin,
                                             platform_admin, token_of):
    student = make_student()
    for admin in (school_admin, platform_admin):
        answer = transfer(client, token_of(admin), student.id, school_code="no-such-school")
        assert answer.status_code == 400 and answer.get_json()["error"] == "unknown_school"


@pytest.mark.parametrize("raw", [
    b"not json", b"[]", b'"text"', b"{", b'{"school_code": 7}', b'{"school_code": null}',
    b'{"school_code": ["a"]}', b'{"school_code": ""}', b'{"school_code": "%s"}' % (b"x" * 65),
    b'{"school_code": "a", "login_id": 5}', b'{"school_code": "a", "login_id": {}}',
    b'{}', b'{"school_code": "\\u0000"}'])
def test_bad_json_is_a_4xx_never_a_500(client, make_student, receiving, platform_admin,
                                        token_of, raw):
    student = make_student()
    answer = client.post(f"/api/admin/accounts/{student.id}/transfer", data=raw,
                         content_type="application/json", headers=token_of(platform_admin))
    assert 400 <= answer.status_code < 500 and answer.get_json()["error"]


@pytest.mark.parametrize("login_id", ["bad login", "ログイン", "x" * 65, ".starts-with-dot"])
def test_a_bad_new_login_id_is_refused(svc, client, make_student, receiving, platform_admin,
                                       token_of, login_id):
    student = make_student()
    answer = transfer(client, token_of(platform_admin), student.id,
                      school_code=receiving.code, login_id=login_id)
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_login_id"
    assert account_row(svc, student.id).school_id != receiving.id


def test_unknown_account_and_transfer_ids_are_404(client, receiving, platform_admin,
                                                  school_admin, token_of):
    for admin in (platform_admin, school_admin):
        assert transfer(client, token_of(admin), "nosuchaccount",
                        school_code=receiving.code).status_code in (403, 404)
        assert client.post("/api/admin/transfers/nosuch/decline",
                           headers=token_of(admin)).status_code == 404


def test_a_boards_move_ends_the_pending_offer(svc, client, make_student, new_school,
                                              receiving, school_admin, receiving_admin,
                                              platform_admin, token_of):
    student = make_student()
    offered = transfer(client, token_of(school_admin), student.id,
                       school_code=receiving.code).get_json()
    elsewhere = new_school("にし小学校")
    assert transfer(client, token_of(platform_admin), student.id,
                    school_code=elsewhere.code).status_code == 200
    with svc.db.session() as s:
        assert s.get(AccountTransfer, offered["id"]).status == "cancelled"
    late = transfer(client, token_of(receiving_admin), student.id, school_code=receiving.code)
    assert late.status_code == 409 and late.get_json()["error"] == "offer_not_pending"
    assert account_row(svc, student.id).school_id == elsewhere.id


# ----------------------------------------------------------------------------- review (i11)
def _guardian_of(svc, child: Student, school) -> str:
    from idp.store.models import GuardianLink

    with svc.db.session() as s:
        guardian = Account(school_id=school.id, login_id=f"grd-{child.login_id}",
                           display_name="山田 太郎", role="guardian")
        s.add(guardian)
        s.flush()
        s.add(GuardianLink(guardian_id=guardian.id, child_id=child.id, created_by="test"))
        return guardian.id


def test_a_move_ends_the_old_schools_guardian_links(svc, client, make_student, school,
                                                    receiving, school_admin,
                                                    receiving_admin, token_of):
    """Abuse: a guardian account the sending school manages kept acting for the pupil at
    the new school (approving its apps' consents, seeing what they received), and neither
    school could end it: the receiving admin's unlink was a 403 (the guardian is not theirs),
    the sending admin's a 404 (the child is not theirs any more). The link was the sending
    school's decision; on the move it ends, in both schools' logs."""
    from idp.accounts.guardians import children_of
    from idp.store.models import GuardianLink

    child = make_student()
    guardian_id = _guardian_of(svc, child, school)
    assert transfer(client, token_of(school_admin), child.id,
                    school_code=receiving.code).status_code == 201
    assert transfer(client, token_of(receiving_admin), child.id,
                    school_code=receiving.code).status_code == 200
    with svc.db.session() as s:
        assert children_of(s, guardian_id) == []
        assert s.scalars(select(GuardianLink).where(
            GuardianLink.child_id == child.id)).all() == []
    svc.events.flush()
    with svc.db.session() as s:
        ended = s.scalars(select(AuditEvent).where(AuditEvent.event == "guardian.unlinked",
                                                   AuditEvent.account_id == child.id)).all()
    assert {e.school_id for e in ended} == {school.id, receiving.id}
    assert all(e.details["reason"] == "transferred" for e in ended)


def test_a_graduate_moved_to_another_school_is_its_pupil_not_a_graduate(
        svc, client, make_student, school, receiving, platform_admin, token_of):
    """A 小6 graduate going on to a 中学校 on the same provider: at the new school they are a
    pupil, not a graduate whose grace period runs out (``idp school lifecycle run`` would
    deactivate them there, deleting their cards and consents, and every app but the
    graduates' ones refused them)."""
    from idp.accounts.lifecycle import ACTIVE, GRADUATED, due_for_deactivation, status_of

    pupil = make_student()
    with svc.db.session() as s:
        row = s.get(Account, pupil.id)
        row.status, row.graduated_at = GRADUATED, utcnow() - timedelta(days=400)
    assert transfer(client, token_of(platform_admin), pupil.id,
                    school_code=receiving.code).status_code == 200
    row = account_row(svc, pupil.id)
    assert (row.status, row.graduated_at, row.active) == (ACTIVE, None, True)
    with svc.db.session() as s:
        assert status_of(s.get(Account, pupil.id)) == ACTIVE
        assert [a.id for a, _ in due_for_deactivation(s, utcnow())
                if a.id == pupil.id] == []


def test_two_answers_to_one_offer_at_once_decide_it_once(svc, app, make_student, school,
                                                          receiving, school_admin,
                                                          receiving_admin, token_of):
    """A race: the receiving admin's accept and the sender's withdrawal (or a double click
    on accept) sent at the same moment. One answer wins; the other is a 409, so the record
    never says "cancelled" for an account that moved, and the move is audited once."""
    import threading

    def accept(c):
        return transfer(c, token_of(receiving_admin), student.id, school_code=receiving.code)

    def withdraw(c):
        return c.post(f"/api/admin/transfers/{offered['id']}/decline",
                      headers=token_of(school_admin))

    for pair in ((accept, accept), (accept, withdraw)):
        student = make_student()
        offered = transfer(app.test_client(), token_of(school_admin), student.id,
                           school_code=receiving.code).get_json()
        barrier, results = threading.Barrier(2), []

        def answer(call) -> None:
            c = app.test_client()
            barrier.wait()
            results.append((call.__name__, call(c).status_code))

        threads = [threading.Thread(target=answer, args=(call,)) for call in pair]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        # The loser: 409 (answered a moment ago), or 400 when it ran just after the move
        # (the account is then already in the receiving school).
        codes = sorted(code for _, code in results)
        assert codes[0] == 200 and codes[1] in (400, 409), results
        row, moved = account_row(svc, student.id), dict(results).get("accept") == 200
        svc.events.flush()
        with svc.db.session() as s:
            status = s.get(AccountTransfer, offered["id"]).status
            moves = s.scalars(select(AuditEvent).where(
                AuditEvent.event == "account.transferred",
                AuditEvent.account_id == student.id)).all()
        if moved or pair == (accept, accept):
            assert (status, row.school_id, len(moves)) == ("completed", receiving.id, 2)
        else:
            assert (status, row.school_id, len(moves)) == ("cancelled", school.id, 0)


def test_two_moves_to_one_login_id_at_once_are_a_409_not_a_500(svc, make_student, school,
                                                                receiving):
    """A race: two pupils moved to the receiving school with the same new login id at the
    same moment. Neither saw the other's (uncommitted) row, so the database's unique index
    decides: the second is the same clear ``login_id_taken`` as when they come one after
    the other, not an IntegrityError."""
    import threading

    from idp.admin import transfers
    from idp.store.models import School

    first, second = make_student(), make_student()
    moved, release, errors = threading.Event(), threading.Event(), []

    def move(student, *, hold: bool) -> None:
        try:
            with svc.db.session() as db:
                account, to = db.get(Account, student.id), db.get(School, receiving.id)
                transfers.move(svc, db, account, to, "same.login", actor_id="test")
                if hold:  # flushed, not committed: the other move cannot see it yet
                    moved.set()
                    release.wait(10)
        except Exception as exc:  # noqa: BLE001 - the test reports what was raised
            errors.append(exc)

    holder = threading.Thread(target=move, args=(first,), kwargs={"hold": True})
    holder.start()
    assert moved.wait(10)
    racer = threading.Thread(target=move, args=(second,), kwargs={"hold": False})
    racer.start()
    racer.join(0.5)  # it waits on the first one's row (PostgreSQL) or write lock (SQLite)
    release.set()
    holder.join(10)
    racer.join(10)
    assert [getattr(e, "code", type(e).__name__) for e in errors] == ["login_id_taken"]
    assert account_row(svc, first.id).login_id == "same.login"
    assert account_row(svc, second.id).school_id == school.id
