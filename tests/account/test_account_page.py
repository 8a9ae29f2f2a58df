"""The student's own page: apps, what each received, withdrawing, cards, passwords."""

from __future__ import annotations

import re

from tests.admin.conftest import own_ip
from tests.conftest import csrf_of, redeem, token_request


def _signed_in_with_tokens(client, browser, rp, student, scope="openid profile offline_access"):
    query, verifier = browser.sign_in_and_authorize(rp, student, scope=scope,
                                                    prompt="consent")
    tokens = redeem(client, rp, query["code"], verifier).get_json()
    assert "access_token" in tokens, tokens
    return tokens


def test_page_needs_sign_in(client):
    response = client.get("/account/")
    assert response.status_code == 303 and "/login" in response.headers["Location"]


def test_shows_apps_and_what_each_received(client, browser, make_rp, student):
    rp = make_rp(host="page.example.test", name="さんすうアプリ")
    tokens = _signed_in_with_tokens(client, browser, rp, student)
    client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    html = client.get("/account/").get_data(as_text=True)
    assert f'id="app-{rp.client_id}"' in html and "さんすうアプリ" in html
    section = html.split(f'id="app-{rp.client_id}"', 1)[1].split("</section>", 1)[0]
    # One row per sign-in at the app: the UserInfo call within it adds none.
    assert section.count('class="sign-in-row"') == 1
    assert re.search(r"\d{1,2}月\d{1,2}日（[月火水木金土日]） \d{1,2}:\d\d", section)
    assert "名前" in section
    english = client.get("/account/?lang=en")
    assert english.status_code == 200 and 'lang="en"' in english.get_data(as_text=True)


def test_withdrawing_consent_revokes_that_apps_tokens(client, browser, make_rp, student, svc):
    from idp.store.models import AuditEvent, Consent

    rp = make_rp(host="withdraw.example.test")
    other = make_rp(host="keep.example.test")
    tokens = _signed_in_with_tokens(client, browser, rp, student)
    kept = _signed_in_with_tokens(client, browser, other, student)
    html = client.get("/account/").get_data(as_text=True)
    response = client.post(f"/account/apps/{rp.client_id}/withdraw",
                           data={"csrf_token": csrf_of(html)})
    assert response.status_code == 303
    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    assert client.get("/userinfo", headers=bearer).status_code == 401
    refreshed = token_request(client, rp, {"grant_type": "refresh_token",
                                           "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    # Another app the student still uses keeps working.
    assert client.get("/userinfo", headers={
        "Authorization": "Bearer " + kept["access_token"]}).status_code == 200
    page = client.get("/account/").get_data(as_text=True)
    assert f'id="app-{rp.client_id}"' not in page and f'id="app-{other.client_id}"' in page
    with svc.db.session() as s:
        assert s.query(Consent).filter_by(account_id=student.id,
                                          client_id=rp.client_id).count() == 0
        event = s.query(AuditEvent).filter_by(event="consent.withdrawn",
                                              client_id=rp.client_id).one()
        assert event.actor == student.id
    # Using the app again asks again.
    response, _ = browser.authorize(rp)
    assert response.status_code == 303 and "/consent" in response.headers["Location"]


def test_withdraw_without_csrf_changes_nothing(client, browser, make_rp, student, svc):
    from idp.store.models import Consent

    rp = make_rp(host="csrf.example.test")
    _signed_in_with_tokens(client, browser, rp, student)
    client.post(f"/account/apps/{rp.client_id}/withdraw", data={})
    with svc.db.session() as s:
        assert s.query(Consent).filter_by(account_id=student.id,
                                          client_id=rp.client_id).count() == 1


def test_my_cards_show_their_state(client, browser, rp, student, svc):
    import secrets
    from datetime import timedelta

    from idp.store.models import CardBinding, utcnow

    with svc.db.session() as s:
        for status, days in (("active", 300), ("active", -2), ("revoked", 300)):
            s.add(CardBinding(account_id=student.id, issuer="CN=CA", status=status,
                              serial=secrets.token_hex(6),
                              certificate_sha256=secrets.token_hex(32),
                              not_after=utcnow() + timedelta(days=days)))
    browser.sign_in_and_authorize(rp, student)
    html = client.get("/account/").get_data(as_text=True)
    assert {m for m in re.findall(r'class="card-(\w+)"', html)} == {"active", "expired",
                                                                    "revoked"}


def test_change_password(client, browser, rp, make_student, svc):
    from idp.signin.passwords import verify_password
    from idp.store.models import Account

    own_ip(client)
    student = make_student()
    browser.sign_in_and_authorize(rp, student)
    page = client.get("/account/password").get_data(as_text=True)
    wrong = client.post("/account/password", data={
        "csrf_token": csrf_of(page), "current": "nope nope nope", "new": "a new long phrase",
        "repeat": "a new long phrase"})
    assert wrong.status_code == 400 and 'id="error"' in wrong.get_data(as_text=True)
    common = client.post("/account/password", data={
        "csrf_token": csrf_of(page), "current": student.password, "new": "password",
        "repeat": "password"})
    assert common.status_code == 400
    done = client.post("/account/password", data={
        "csrf_token": csrf_of(page), "current": student.password,
        "new": "a new long phrase", "repeat": "a new long phrase"})
    assert done.status_code == 303
    assert client.get("/account/").status_code == 200  # still signed in here
    with svc.db.session() as s:
        assert verify_password(s.get(Account, student.id).password_hash, "a new long phrase")


def test_reset_code_from_admin_lets_the_student_choose_a_password(
        app, client, make_student, svc, token_of, school_admin):
    from idp.signin.passwords import verify_password
    from idp.store.models import Account

    own_ip(client)
    student = make_student()
    issued = app.test_client().post(f"/api/admin/accounts/{student.id}/reset-code",
                                    headers=token_of(school_admin)).get_json()
    code = issued["reset_code"]
    page = client.get("/account/reset").get_data(as_text=True)

    def redeem_code(value, new="my own secret words"):
        return client.post("/account/reset", data={
            "csrf_token": csrf_of(page), "school": student.school_code,
            "login_id": student.login_id, "code": value, "new": new, "repeat": new})

    assert redeem_code("AAAA-BBBB-CCCC").status_code == 400
    assert redeem_code(code.lower().replace("-", " ")).status_code == 200
    with svc.db.session() as s:
        assert verify_password(s.get(Account, student.id).password_hash,
                               "my own secret words")
    assert redeem_code(code, new="another secret words").status_code == 400  # used once
    # The admin API never reveals a password or lets one be set.
    body = app.test_client().get(f"/api/admin/accounts/{student.id}",
                                 headers=token_of(school_admin)).get_json()
    assert "password" not in body and "password_hash" not in body


def test_current_password_guesses_are_counted_before_the_check(client, browser, rp,
                                                               make_student, svc, monkeypatch):
    """A classmate at a signed-in shared PC guesses the current password to take the account
    over: each guess is reserved in the throttle before the password is checked (so guesses
    sent in parallel are all counted), and after the free allowance the page slows down, the
    right password included."""
    import idp.account.my_page as account_service
    from idp.signin.throttle import ACCOUNT_POLICY

    own_ip(client)
    student = make_student()
    browser.sign_in_and_authorize(rp, student)
    page = client.get("/account/password").get_data(as_text=True)
    key = f"thr:acct:pwchange:{student.id}"
    seen_before_check: list[int] = []
    real_verify = account_service.verify_password

    def watching_verify(stored_hash, password):
        seen_before_check.append(svc.store.tally(key, 0, ACCOUNT_POLICY.window)[0])
        return real_verify(stored_hash, password)

    monkeypatch.setattr(account_service, "verify_password", watching_verify)
    form = {"csrf_token": csrf_of(page), "new": "a new long phrase",
            "repeat": "a new long phrase"}
    for i in range(ACCOUNT_POLICY.free_failures):
        wrong = client.post("/account/password", data={**form, "current": f"guess {i}"})
        assert wrong.status_code == 400
    # The counter already held this attempt while its password was being checked.
    assert seen_before_check == list(range(1, ACCOUNT_POLICY.free_failures + 1))
    slowed = client.post("/account/password", data={**form, "current": student.password})
    assert slowed.status_code == 429
    assert len(seen_before_check) == ACCOUNT_POLICY.free_failures  # not even checked


def test_one_row_per_sign_in_grouped_under_its_app(client, browser, make_rp, student):
    """Two sign-ins at one app are two rows under it; the refresh and UserInfo calls in
    between add none; another app's sign-in goes under that app."""
    maths = make_rp(host="maths.example.test", name="さんすう")
    words = make_rp(host="words.example.test", name="こくご")
    tokens = _signed_in_with_tokens(client, browser, maths, student)
    refreshed = token_request(client, maths, {"grant_type": "refresh_token",
                                              "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200 and "id_token" in refreshed.get_json()
    client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    _signed_in_with_tokens(client, browser, maths, student)
    _signed_in_with_tokens(client, browser, words, student)
    html = client.get("/account/").get_data(as_text=True)

    def rows(rp) -> int:
        section = html.split(f'id="app-{rp.client_id}"', 1)[1].split("</section>", 1)[0]
        return section.count('class="sign-in-row"')

    assert (rows(maths), rows(words)) == (2, 1)


def test_the_page_names_the_class_as_the_school_does(client, browser, rp, make_student, svc):
    """「5年 2組」 for a numbered class; a named class (a special-needs class) as named."""
    from idp.store.models import Account

    student = make_student()
    browser.sign_in_and_authorize(rp, student)
    assert re.search(r'id="my-school">[^<]* 5年 2組</p>', client.get("/account/").get_data(
        as_text=True))
    with svc.db.session() as db:
        db.get(Account, student.id).class_name = "ひまわり学級"
    japanese = client.get("/account/?lang=ja").get_data(as_text=True)
    assert re.search(r'id="my-school">[^<]* 5年 ひまわり学級</p>', japanese), japanese[:2000]
    english = client.get("/account/?lang=en").get_data(as_text=True)
    assert re.search(r'id="my-school">[^<]* Grade 5, ひまわり学級</p>', english)
