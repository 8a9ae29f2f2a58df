"""A child under the school's age asks; a linked guardian approves from their own device;
the child's app gets the child's own pairwise ``sub``. And every way around it is refused."""

from __future__ import annotations

import re

from joserfc import jwt

from tests.conftest import csrf_of, query_of, redeem, token_request
from tests.guardians.conftest import link, post_button, request_ids, sign_in


def _to_consent(browser, rp, child, scope="openid profile"):
    response, verifier = browser.authorize(rp, scope=scope)
    if "/consent" in response.headers.get("Location", ""):  # signed in already
        return response.headers["Location"], verifier
    response = browser.password_login(browser.follow_to_login(response), child)
    assert response.status_code == 303
    response = browser.c.get(response.headers["Location"])  # /authorize again
    assert response.status_code == 303 and "/consent" in response.headers["Location"]
    return response.headers["Location"], verifier


def _press(client, consent_url: str, button: str):
    html = client.get(consent_url).get_data(as_text=True)
    txn = re.search(r'name="txn" type="hidden" value="([^"]*)"', html).group(1)
    return client.post("/consent", data={"csrf_token": csrf_of(html), "txn": txn,
                                         button: "1"})


def test_child_asks_and_guardian_approves_on_own_device(client, browser, rp, young_child,
                                                        guardian, guardian_device, svc):
    from idp.oidc.claims import subject_for
    from idp.store.models import Client

    consent_url, verifier = _to_consent(browser, rp, young_child)
    page = client.get(consent_url).get_data(as_text=True)
    assert 'id="guardian-needed"' in page and "おうちの人にかくにんしてもらってね" in page
    assert 'name="allow"' not in page
    asked = _press(client, consent_url, "ask")
    assert asked.status_code == 200 and 'id="guardian-asked"' in asked.get_data(as_text=True)
    # Checking before the guardian answered: still the consent page, still waiting.
    check = re.search(r'id="check-again" href="([^"]+)"', asked.get_data(as_text=True))
    again = client.get(check.group(1).replace("&amp;", "&"))
    assert again.status_code == 303 and "/consent" in again.headers["Location"]

    sign_in(guardian_device, guardian)
    home = guardian_device.get("/account/children/").get_data(as_text=True)
    (request_id,) = request_ids(home)
    assert "山田 花子" in home and f'id="child-{young_child.id}"' in home
    answer = post_button(guardian_device, "/account/children/",
                         f"/account/children/requests/{request_id}/approve")
    assert answer.status_code == 303

    done = client.get(check.group(1).replace("&amp;", "&"))
    assert done.status_code == 302 and done.headers["Location"].startswith(rp.redirect_uri)
    tokens = redeem(client, rp, query_of(done.headers["Location"])["code"], verifier).get_json()
    claims = jwt.decode(tokens["id_token"], svc.keys.public_keyset()).claims
    with svc.db.session() as s:
        row = s.get(Client, rp.client_id)
        assert claims["sub"] == subject_for(svc.settings.pairwise_secret, row, young_child.id)
        assert claims["sub"] != subject_for(svc.settings.pairwise_secret, row, guardian.id)
    # Nothing about the guardian reaches the app.
    assert not any("guardian" in key for key in claims)
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert guardian.id not in info.get_data(as_text=True)
    # The guardian sees the app on the child's list; the request is closed.
    home = guardian_device.get("/account/children/").get_data(as_text=True)
    assert f'id="app-{young_child.id}-{rp.client_id}"' in home and not request_ids(home)


def test_child_cannot_say_yes_alone_by_any_button(client, browser, rp, young_child, guardian,
                                                  svc):
    from idp.store.models import Consent

    consent_url, _ = _to_consent(browser, rp, young_child)
    refused = _press(client, consent_url, "allow")
    assert refused.status_code == 403 and 'id="consent-error"' in refused.get_data(as_text=True)
    # A bare POST (no button at all) is no yes either.
    html = client.get(consent_url).get_data(as_text=True)
    txn = re.search(r'name="txn" type="hidden" value="([^"]*)"', html).group(1)
    assert client.post("/consent", data={"csrf_token": csrf_of(html),
                                         "txn": txn}).status_code == 403
    _press(client, consent_url, "ask")
    home = client.get("/account/children/")
    assert home.status_code == 403  # the child is no guardian
    with svc.db.session() as s:
        from idp.store.models import GuardianRequest

        (request_id,) = [r.id for r in s.query(GuardianRequest).filter_by(
            child_id=young_child.id)]
    page = client.get(consent_url).get_data(as_text=True)  # a valid token of this session
    answer = client.post(f"/account/children/requests/{request_id}/approve",
                         data={"csrf_token": csrf_of(page)})
    assert answer.status_code == 403
    with svc.db.session() as s:
        assert s.query(Consent).filter_by(account_id=young_child.id).count() == 0
        assert s.get(GuardianRequest, request_id).status == "pending"


def test_deny_still_answers_access_denied(client, browser, rp, young_child, guardian):
    consent_url, _ = _to_consent(browser, rp, young_child)
    response = _press(client, consent_url, "deny")
    # Straight back to the app with the refusal (no round trip through /authorize).
    assert response.status_code == 303 and response.headers["Location"].startswith(
        rp.redirect_uri)
    assert query_of(response.headers["Location"])["error"] == "access_denied"


def test_openid_alone_needs_no_guardian(client, browser, rp, young_child, guardian):
    query, _ = browser.sign_in_and_authorize(rp, young_child, scope="openid")
    assert "code" in query


def test_under_age_with_no_guardian_is_told_to_ask_a_teacher(client, browser, rp,
                                                             young_child):
    consent_url, _ = _to_consent(browser, rp, young_child)
    page = client.get(consent_url).get_data(as_text=True)
    assert 'id="guardian-missing"' in page and 'name="allow"' not in page
    assert _press(client, consent_url, "allow").status_code == 403
    assert _press(client, consent_url, "ask").status_code == 403


def test_an_older_pupil_answers_alone_unless_the_app_asks_for_a_guardian(
        client, browser, rp, make_student, make_guardian, svc, guardian_device):
    from datetime import date

    older = make_student(birth_date=date(date.today().year - 17, 1, 1))
    adult = make_guardian()
    link(svc, adult, older)
    query, _ = browser.sign_in_and_authorize(rp, older, scope="openid profile")
    assert "code" in query
    consent_url, verifier = _to_consent(browser, rp, older, scope="openid guardian")
    assert 'id="guardian-needed"' in client.get(consent_url).get_data(as_text=True)
    _press(client, consent_url, "ask")
    sign_in(guardian_device, adult)
    (request_id,) = request_ids(guardian_device.get("/account/children/").get_data(
        as_text=True))
    post_button(guardian_device, "/account/children/",
                f"/account/children/requests/{request_id}/approve")
    query, verifier = browser.sign_in_and_authorize(rp, older, scope="openid guardian")
    tokens = redeem(client, rp, query["code"], verifier).get_json()
    assert "guardian" in tokens["scope"].split()  # what the app learns: a guardian said yes
    # Asking for more later, still with "guardian": the guardian is asked again (the
    # granted scope must keep meaning that a guardian agreed to all of it).
    consent_url, _ = _to_consent(browser, rp, older, scope="openid guardian offline_access")
    assert 'id="guardian-needed"' in client.get(consent_url).get_data(as_text=True)
    assert _press(client, consent_url, "allow").status_code == 403


def test_guardian_of_another_child_sees_and_does_nothing(
        client, browser, rp, young_child, guardian, make_guardian, make_student, svc,
        guardian_device):
    from idp.store.models import GuardianRequest

    stranger = make_guardian()
    link(svc, stranger, make_student())  # a guardian, but of someone else
    consent_url, _ = _to_consent(browser, rp, young_child)
    _press(client, consent_url, "ask")
    sign_in(guardian_device, stranger)
    home = guardian_device.get("/account/children/").get_data(as_text=True)
    assert young_child.id not in home and not request_ids(home)
    with svc.db.session() as s:
        (request_id,) = [r.id for r in s.query(GuardianRequest).filter_by(
            child_id=young_child.id)]
    for action in (f"/account/children/requests/{request_id}/approve",
                   f"/account/children/{young_child.id}/apps/{rp.client_id}/withdraw"):
        assert post_button(guardian_device, "/account/children/", action).status_code == 404
    with svc.db.session() as s:
        assert s.get(GuardianRequest, request_id).status == "pending"


def test_guardian_withdraws_a_childs_consent(client, browser, rp, young_child, guardian, svc,
                                             guardian_device):
    from idp.store.models import Consent

    consent_url, verifier = _to_consent(browser, rp, young_child,
                                        scope="openid profile offline_access")
    _press(client, consent_url, "ask")
    sign_in(guardian_device, guardian)
    (request_id,) = request_ids(guardian_device.get("/account/children/").get_data(
        as_text=True))
    post_button(guardian_device, "/account/children/",
                f"/account/children/requests/{request_id}/approve")
    query, verifier = browser.sign_in_and_authorize(rp, young_child,
                                                    scope="openid profile offline_access")
    tokens = redeem(client, rp, query["code"], verifier).get_json()
    response = post_button(guardian_device, "/account/children/",
                           f"/account/children/{young_child.id}/apps/{rp.client_id}/withdraw")
    assert response.status_code == 303
    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    assert client.get("/userinfo", headers=bearer).status_code == 401
    refreshed = token_request(client, rp, {"grant_type": "refresh_token",
                                           "refresh_token": tokens["refresh_token"]})
    assert refreshed.get_json()["error"] == "invalid_grant"
    with svc.db.session() as s:
        assert s.query(Consent).filter_by(account_id=young_child.id).count() == 0


def test_an_ended_link_ends_the_guardians_access(client, browser, rp, young_child, guardian,
                                                 svc, guardian_device):
    from idp.store.models import GuardianLink, GuardianRequest

    consent_url, _ = _to_consent(browser, rp, young_child)
    _press(client, consent_url, "ask")
    sign_in(guardian_device, guardian)
    (request_id,) = request_ids(guardian_device.get("/account/children/").get_data(
        as_text=True))
    with svc.db.session() as s:
        s.query(GuardianLink).filter_by(guardian_id=guardian.id).delete()
    home = guardian_device.get("/account/children/").get_data(as_text=True)
    assert young_child.id not in home and not request_ids(home)
    answer = post_button(guardian_device, "/account/children/",
                         f"/account/children/requests/{request_id}/approve")
    assert answer.status_code == 404
    with svc.db.session() as s:
        assert s.get(GuardianRequest, request_id).status == "pending"


def test_approve_needs_the_csrf_token(client, browser, rp, young_child, guardian, svc,
                                      guardian_device):
    from idp.store.models import GuardianRequest

    consent_url, _ = _to_consent(browser, rp, young_child)
    _press(client, consent_url, "ask")
    sign_in(guardian_device, guardian)
    (request_id,) = request_ids(guardian_device.get("/account/children/").get_data(
        as_text=True))
    forged = guardian_device.post(f"/account/children/requests/{request_id}/approve")
    assert forged.status_code in (303, 400)
    with svc.db.session() as s:
        assert s.get(GuardianRequest, request_id).status == "pending"


def test_bad_inputs_never_answer_500(guardian_device, guardian, young_child):
    sign_in(guardian_device, guardian)
    for path in ("/account/children/requests/" + "x" * 300 + "/approve",
                 "/account/children/requests/nope/maybe",
                 f"/account/children/{'y' * 200}/apps/{'z' * 300}/withdraw"):
        response = post_button(guardian_device, "/account/children/", path)
        assert response.status_code in (303, 404), (path, response.status_code)
    english = guardian_device.get("/account/children/?lang=en").get_data(as_text=True)
    assert "Guardian's page" in english and "Requests from your children" in english
    assert guardian_device.get("/account/").status_code == 200


def test_a_declined_request_is_shown_and_an_expired_one_cannot_be_approved(
        client, browser, rp, young_child, guardian, svc, guardian_device):
    from datetime import timedelta

    from idp.store.models import Consent, GuardianRequest, utcnow

    consent_url, _ = _to_consent(browser, rp, young_child)
    _press(client, consent_url, "ask")
    sign_in(guardian_device, guardian)
    (request_id,) = request_ids(guardian_device.get("/account/children/").get_data(
        as_text=True))
    post_button(guardian_device, "/account/children/",
                f"/account/children/requests/{request_id}/decline")
    page = client.get(consent_url).get_data(as_text=True)
    assert 'id="guardian-declined"' in page and 'name="ask"' in page
    _press(client, consent_url, "ask")  # asking again is a new request
    with svc.db.session() as s:
        row = s.query(GuardianRequest).filter_by(child_id=young_child.id,
                                                 status="pending").one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        late_id = row.id
    assert not request_ids(guardian_device.get("/account/children/").get_data(as_text=True))
    late = post_button(guardian_device, "/account/children/",
                       f"/account/children/requests/{late_id}/approve")
    assert late.status_code == 303  # told it is closed, nothing stored
    with svc.db.session() as s:
        assert s.get(GuardianRequest, late_id).status == "pending"
        assert s.query(Consent).filter_by(account_id=young_child.id).count() == 0


def test_a_request_widened_after_the_guardian_read_it_is_not_approved_unseen(
        client, browser, rp, young_child, guardian, guardian_device, svc):
    """Abuse (a race): the guardian's page shows "profile"; before they press いいよ the app
    asks for more and the child presses "ask" again. The guardian's yes was to what they
    read: it must not grant the wider scope. The wider ask is a new request, which the
    guardian sees and answers on its own."""
    from sqlalchemy import select

    from idp.store.models import Consent

    consent_url, _ = _to_consent(browser, rp, young_child, scope="openid profile")
    assert _press(client, consent_url, "ask").status_code == 200
    sign_in(guardian_device, guardian)
    (seen,) = request_ids(guardian_device.get("/account/children/").get_data(as_text=True))

    wider_url, _ = _to_consent(browser, rp, young_child, scope="openid profile school")
    assert _press(client, wider_url, "ask").status_code == 200
    answer = post_button(guardian_device, "/account/children/",
                         f"/account/children/requests/{seen}/approve")
    assert answer.status_code == 303
    with svc.db.session() as s:
        granted = s.scalar(select(Consent.scopes).where(Consent.account_id == young_child.id,
                                                        Consent.client_id == rp.client_id))
    assert granted is None or "school" not in granted
    (wider,) = request_ids(guardian_device.get("/account/children/").get_data(as_text=True))
    assert wider != seen
    assert post_button(guardian_device, "/account/children/",
                       f"/account/children/requests/{wider}/approve").status_code == 303
    with svc.db.session() as s:
        granted = s.scalar(select(Consent.scopes).where(Consent.account_id == young_child.id,
                                                        Consent.client_id == rp.client_id))
    assert {"profile", "school"} <= set(granted)


def test_two_guardians_answering_at_once_decide_the_request_once(
        app, client, browser, rp, young_child, guardian, make_guardian, svc):
    """A race: both parents answer the same request at the same moment, one いいよ and one
    だめ. One answer decides it; the record and the consent agree (never "declined" with the
    app let in), and one answer is audited."""
    import threading

    from sqlalchemy import select

    from idp.store.models import AuditEvent, Consent, GuardianRequest

    other_parent = make_guardian()
    link(svc, other_parent, young_child)
    consent_url, _ = _to_consent(browser, rp, young_child, scope="openid profile")
    assert _press(client, consent_url, "ask").status_code == 200
    devices = {}
    for parent in (guardian, other_parent):
        devices[parent.id] = app.test_client()
        sign_in(devices[parent.id], parent)
    (request_id,) = request_ids(devices[guardian.id].get("/account/children/")
                                .get_data(as_text=True))
    tokens = {pid: csrf_of(d.get("/account/password").get_data(as_text=True))
              for pid, d in devices.items()}
    barrier = threading.Barrier(2)

    def answer(parent_id: str, verb: str) -> None:
        barrier.wait()
        devices[parent_id].post(f"/account/children/requests/{request_id}/{verb}",
                                data={"csrf_token": tokens[parent_id]})

    threads = [threading.Thread(target=answer, args=(guardian.id, "approve")),
               threading.Thread(target=answer, args=(other_parent.id, "decline"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    svc.events.flush()
    with svc.db.session() as s:
        status = s.get(GuardianRequest, request_id).status
        consent = s.scalar(select(Consent).where(Consent.account_id == young_child.id,
                                                 Consent.client_id == rp.client_id))
        answers = s.scalars(select(AuditEvent).where(
            AuditEvent.account_id == young_child.id,
            AuditEvent.event.in_(("guardian.consent_approved",
                                  "guardian.consent_declined")))).all()
    assert (status == "approved") == (consent is not None), status
    assert len(answers) == 1, [a.event for a in answers]
