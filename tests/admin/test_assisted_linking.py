"""Issue 8, school-assisted card linking: a teacher or school admin signed in with password
+ TOTP links the card a student taps at the school PC to the student's account, without the
student's password; the staff member confirms on a page naming the student, and the binding
is audited (``card.bound`` with ``assisted_by``). The test plays the bridge and the card
(tests/card/helpers.py) on an app with the test PKI."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from tests.admin.conftest import admin_sign_in, own_ip
from tests.card.helpers import CardBrowser, make_token
from tests.conftest import Student, csrf_of


def _page_csrf(c, student_id: str) -> str:
    page = c.get(f"/admin/link-card/{student_id}")
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    return re.search(r'data-csrf="([^"]+)"', page.get_data(as_text=True)).group(1)


def tap(c, student_id: str, card, csrf: str | None = None):
    """What card.js does on the page: challenge, let the card sign, post the token."""
    csrf = csrf or _page_csrf(c, student_id)
    challenge = c.post(f"/admin/link-card/{student_id}/challenge",
                       headers={"X-CSRFToken": csrf})
    assert challenge.status_code == 200, challenge.get_data(as_text=True)[:300]
    token = make_token(card.der, card.key, challenge.get_json()["challenge"])
    return c.post(f"/admin/link-card/{student_id}/verify", json=token,
                  headers={"X-CSRFToken": csrf})


def confirm(c, student_id: str, csrf: str | None = None):
    if csrf is None:
        csrf = csrf_of(c.get("/admin/link-card").get_data(as_text=True))
    return c.post(f"/admin/link-card/{student_id}/confirm", data={"csrf_token": csrf})


def sign_in_next_step(c, who) -> None:
    """admin_sign_in for a second browser of the same person: the current step's code was
    used up by the first sign-in, so use the next step's (accepted: clock drift)."""
    import pyotp

    page = c.get("/admin/login")
    c.post("/admin/login", data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                                 "school": who.school_code, "login_id": who.login_id,
                                 "password": who.password, "next": ""})
    page = c.get("/admin/totp")
    response = c.post("/admin/totp", data={
        "csrf_token": csrf_of(page.get_data(as_text=True)),
        "code": pyotp.TOTP(who.totp_secret).at(time.time() + 30)})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]


def bindings(svc, account_id: str):
    from idp.store.models import CardBinding

    with svc.db.session() as s:
        return list(s.scalars(select(CardBinding).where(CardBinding.account_id == account_id)))


def events(svc, event: str, account_id: str):
    from idp.store.models import AuditEvent

    with svc.db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.event == event,
                                                      AuditEvent.account_id == account_id)))


@pytest.fixture
def staff(crl_app, make_account):
    """A signed-in staff browser on the card-enabled app: (client, account)."""

    def make(role: str = "teacher", in_school=None):
        who = make_account(role, in_school=in_school)
        c = own_ip(crl_app.test_client())
        admin_sign_in(c, who)
        return c, who

    return make


@pytest.mark.parametrize("role", ["teacher", "school_admin"])
def test_staff_link_a_students_card_and_the_student_then_signs_in_with_it(
        crl_app, svc, staff, make_student, new_card, role):
    c, teacher = staff(role)
    student = make_student()
    roster = c.get("/admin/link-card").get_data(as_text=True)
    assert f'id="link-{student.login_id}"' in roster
    card = new_card()
    answer = tap(c, student.id, card)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["redirect"] == f"/admin/link-card/{student.id}/confirm"
    assert bindings(svc, student.id) == []  # nothing until the staff member confirms
    page = c.get(answer.get_json()["redirect"]).get_data(as_text=True)
    assert "山田 花子" in page and student.login_id in page and 'id="link-confirm"' in page
    done = confirm(c, student.id, csrf_of(page))
    assert done.status_code == 303 and "done=1" in done.headers["Location"]
    [binding] = bindings(svc, student.id)
    assert f'id="link-card-serial">{binding.serial}<' in page  # the card confirmed is this one
    [bound] = events(svc, "card.bound", student.id)
    assert bound.actor == teacher.id and bound.details["assisted_by"] == teacher.id
    # The student's own browser now signs in with the card: no password needed.
    pupil = CardBrowser(crl_app.test_client())
    signed_in = pupil.use_card(card)
    assert signed_in.status_code == 200 and "redirect" in signed_in.get_json()


def test_teacher_lands_on_card_linking_and_reaches_nothing_else(staff):
    c, _ = staff("teacher")
    for path in ("/admin/", "/admin/accounts", "/admin/audit", "/admin/roster",
                 "/admin/schools", "/admin/tokens"):
        assert c.get(path).status_code == 403, path
    assert c.get("/admin/link-card").status_code == 200


def test_teacher_sign_in_lands_on_the_linking_page(crl_app, make_account):
    from tests.admin.conftest import admin_sign_in as sign

    teacher = make_account("teacher")
    c = own_ip(crl_app.test_client())
    assert sign(c, teacher).headers["Location"] == "/admin/link-card"


def test_teacher_of_another_school_cannot(staff, make_student, other_school_fixture,
                                          new_card, svc):
    c, _ = staff("teacher", in_school=other_school_fixture)
    student = make_student()  # in the default school
    assert f'id="link-{student.login_id}"' not in c.get("/admin/link-card").get_data(
        as_text=True)
    assert c.get(f"/admin/link-card/{student.id}").status_code == 403
    csrf = csrf_of(c.get("/admin/link-card").get_data(as_text=True))
    for step in ("challenge", "verify"):
        response = c.post(f"/admin/link-card/{student.id}/{step}", json={},
                          headers={"X-CSRFToken": csrf})
        assert response.status_code == 403, step
    assert confirm(c, student.id, csrf).status_code == 403
    assert c.get(f"/admin/link-card/{student.id}?school=x").status_code == 403
    assert bindings(svc, student.id) == []


@pytest.fixture
def other_school_fixture(svc):
    from idp.store.models import School
    from tests.conftest import unique

    with svc.db.session() as s:
        row = School(code=unique("oth"), name="となり小学校")
        s.add(row)
    return row


def test_a_student_cannot(crl_app, make_student, make_account, new_card):
    student = make_student()
    pupil = CardBrowser(own_ip(crl_app.test_client()))
    pupil.password_login(pupil.c.get("/login"), student)
    assert pupil.c.get("/admin/link-card").status_code == 403
    assert pupil.c.get(f"/admin/link-card/{student.id}").status_code == 403
    # Nor through the staff sign-in: a student is refused at the password step.
    page = pupil.c.get("/admin/login")
    refused = pupil.c.post("/admin/login", data={
        "csrf_token": csrf_of(page.get_data(as_text=True)), "school": student.school_code,
        "login_id": student.login_id, "password": student.password, "next": ""})
    assert refused.status_code == 401


def _binding_linked_under_totp(app, account_id: str) -> str:
    from datetime import timedelta

    from idp.store.models import CardBinding, new_id, utcnow

    with app.extensions["mynagate"].db.session() as db:
        row = CardBinding(id=new_id(), account_id=account_id, issuer="CN=test", serial=new_id(),
                          certificate_sha256=new_id() * 2, status="active",
                          not_after=utcnow() + timedelta(days=30), created_at=utcnow(),
                          linked_with_mfa=True)
        db.add(row)
        db.commit()
        return row.id


def test_without_totp_cannot(crl_app, make_account, make_student):
    from idp.signin.context import ACR_CARD, AMR_CARD

    teacher = make_account("teacher")
    student = make_student()
    c = own_ip(crl_app.test_client())
    page = c.get("/admin/login")
    c.post("/admin/login", data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                                 "school": teacher.school_code, "login_id": teacher.login_id,
                                 "password": teacher.password, "next": ""})
    assert c.get(f"/admin/link-card/{student.id}").status_code == 303  # password alone
    # A card-level session (the teacher's own card at this PC) is not the TOTP asked for.
    # Even a card linked under TOTP, the strongest card session there is.
    binding_id = _binding_linked_under_totp(crl_app, teacher.id)
    carded = crl_app.test_client()
    with carded.session_transaction() as session:
        session.update(account_id=teacher.id, auth_time=int(time.time()), acr=ACR_CARD,
                       amr=AMR_CARD, sid="sid-card", card_binding=binding_id)
    response = carded.get(f"/admin/link-card/{student.id}")
    assert response.status_code == 303 and "reason=totp" in response.headers["Location"]
    # A password-only session from the student sign-in is not enough either.
    browser = CardBrowser(own_ip(crl_app.test_client()))
    browser.password_login(browser.c.get("/login"), Student(
        teacher.id, teacher.school_code, teacher.login_id, teacher.password))
    assert browser.c.get("/admin/link-card").status_code == 303


def test_staff_cannot_link_their_own_card_to_a_student(crl_app, svc, staff, make_student,
                                                       new_card):
    c, teacher = staff("teacher")
    own_card = new_card()
    # The teacher's card is linked to the teacher (first use + password, as anyone links).
    mine = CardBrowser(own_ip(crl_app.test_client()))
    response = mine.use_card(own_card)
    assert response.get_json()["error"] == "card_not_linked"
    linked = mine.link_after_card(response, Student(
        teacher.id, teacher.school_code, teacher.login_id, teacher.password))
    assert linked.status_code == 303
    assert len(bindings(svc, teacher.id)) == 1
    student = make_student()
    refused = tap(c, student.id, own_card)
    assert refused.status_code == 409 and refused.get_json()["error"] == \
        "card_linked_elsewhere"
    assert bindings(svc, student.id) == []
    [event] = events(svc, "card.bind", student.id)
    assert event.outcome == "refused" and event.details["reason"] == "staff_own_card"
    assert confirm(c, student.id).status_code == 409  # nothing was remembered to confirm


def test_a_card_linked_elsewhere_or_already_linked_is_refused(svc, staff, make_student,
                                                              new_card):
    c, _ = staff("teacher")
    first, second = make_student(), make_student()
    card = new_card()
    assert tap(c, first.id, card).status_code == 200
    assert confirm(c, first.id).status_code == 303
    again = tap(c, first.id, card)
    assert again.status_code == 409 and again.get_json()["error"] == "already_linked"
    moved = tap(c, second.id, card)
    assert moved.status_code == 409 and moved.get_json()["error"] == "card_linked_elsewhere"
    assert [b.account_id for b in bindings(svc, first.id)] == [first.id]
    assert bindings(svc, second.id) == []


def test_the_confirmation_belongs_to_this_browser_this_staff_and_this_student(
        crl_app, svc, staff, make_student, new_card):
    c, teacher = staff("teacher")
    chosen, other = make_student(), make_student()
    card = new_card()
    assert tap(c, chosen.id, card).status_code == 200
    # Swapping the student in the URL after the tap: nothing to confirm for that one.
    assert confirm(c, other.id).status_code == 409
    # The same teacher in another browser (another PC) cannot confirm this tap.
    elsewhere = own_ip(crl_app.test_client())
    sign_in_next_step(elsewhere, teacher)
    assert confirm(elsewhere, chosen.id).status_code == 409
    assert bindings(svc, other.id) == [] and bindings(svc, chosen.id) == []
    # The tap was spent by the swap attempt: tapping again and confirming works, once.
    assert tap(c, chosen.id, card).status_code == 200
    assert confirm(c, chosen.id).status_code == 303
    assert confirm(c, chosen.id).status_code == 409  # replayed: no second binding
    assert len(events(svc, "card.bound", chosen.id)) == 1


def test_a_sign_in_challenge_does_not_work_on_the_linking_page(crl_app, staff, make_student,
                                                               new_card, svc):
    c, _ = staff("teacher")
    student = make_student()
    card = new_card()
    csrf = _page_csrf(c, student.id)
    # A challenge from the student sign-in page of this same browser...
    sign_in_page = c.get("/login/card").get_data(as_text=True)
    login_csrf = re.search(r'data-csrf="([^"]+)"', sign_in_page).group(1)
    challenge = c.post("/login/card/challenge", headers={"X-CSRFToken": login_csrf})
    token = make_token(card.der, card.key, challenge.get_json()["challenge"])
    # ...signed by the card cannot be posted to the linking endpoint.
    response = c.post(f"/admin/link-card/{student.id}/verify", json=token,
                      headers={"X-CSRFToken": csrf})
    assert response.status_code == 400 and response.get_json()["error"] == \
        "challenge_not_found"
    # Nor one issued for another student.
    c.post(f"/admin/link-card/{student.id}/challenge", headers={"X-CSRFToken": csrf})
    other = make_student()
    response = c.post(f"/admin/link-card/{other.id}/verify", json=token,
                      headers={"X-CSRFToken": csrf})
    assert response.status_code == 400
    assert bindings(svc, student.id) == [] and bindings(svc, other.id) == []


def test_junk_tokens_get_a_clear_error(staff, make_student):
    c, _ = staff("teacher")
    student = make_student()
    csrf = _page_csrf(c, student.id)
    for body in (b"", b"[]", b'{"format": 1}', b"\xff\xfe", b'{"a":' * 50):
        response = c.post(f"/admin/link-card/{student.id}/verify", data=body,
                          content_type="application/json", headers={"X-CSRFToken": csrf})
        assert response.status_code == 400, (body, response.status_code)
        assert response.get_json()["error"]
    # Unknown ids: a teacher is told only "not allowed" (no probing which ids exist).
    assert c.get("/admin/link-card/" + "x" * 300).status_code == 403
    assert c.get("/admin/link-card/nope/confirm").status_code == 403


def test_only_active_students_get_a_card_this_way(svc, staff, make_student, make_account,
                                                 new_card):
    from idp.store.models import Account

    c, _ = staff("school_admin")
    locked = make_student(locked=True)
    response = c.get(f"/admin/link-card/{locked.id}")
    assert response.status_code == 409
    csrf = csrf_of(c.get("/admin/link-card").get_data(as_text=True))
    refused = c.post(f"/admin/link-card/{locked.id}/challenge", headers={"X-CSRFToken": csrf})
    assert refused.status_code == 409 and refused.get_json()["error"] == "account_unavailable"
    # Staff accounts are not linked this way (a teacher's, an admin's — nor the caller's own).
    for role in ("teacher", "school_admin"):
        target = make_account(role)
        assert c.get(f"/admin/link-card/{target.id}").status_code == 403
    # Demoted between the tap and the confirmation: refused at the confirmation.
    student = make_student()
    teacher_c, teacher = staff("teacher")
    assert tap(teacher_c, student.id, new_card()).status_code == 200
    csrf = csrf_of(teacher_c.get("/admin/link-card").get_data(as_text=True))
    with svc.db.session() as s:
        s.get(Account, teacher.id).role = "student"
    assert confirm(teacher_c, student.id, csrf).status_code == 403
    assert bindings(svc, student.id) == []
