"""Refresh rotation is one transaction (issue 8 point 2) and an authorization code is
compared and taken in one atomic step, so a wrong client neither redeems nor spends it
(point 3). Both backends: run with MYNAGATE_TEST_BACKEND=postgres too."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tests.conftest import redeem, token_request
from tests.oidc.conftest import refresh, sign_in_tokens, userinfo

OFFLINE = "openid offline_access"


def _family_of(svc, access_token: str):
    from idp.oidc.tokens import find_token

    with svc.db.session() as db:
        return find_token(db, access_token).family


def _events(svc, event: str, client_id: str) -> int:
    from idp.store.models import AuditEvent

    with svc.db.session() as db:
        return len(db.scalars(select(AuditEvent).where(
            AuditEvent.event == event, AuditEvent.client_id == client_id)).all())


# ----------------------------------------------------------------------------- rotation
def test_a_failed_rotation_leaves_the_old_refresh_token_usable(client, browser, rp,
                                                               shared_student, svc,
                                                               monkeypatch):
    """The rotation's write fails (the database): the claim and the successor are one
    atomic write, so the old token works afterwards and no theft alarm revoked the family."""
    import idp.oidc.server

    tokens = sign_in_tokens(browser, rp, shared_student, scope=OFFLINE)
    old = tokens.body["refresh_token"]
    real_rotate = idp.oidc.server.rotate_refresh_token

    def failing_rotate(database, presented_id, successor):
        raise OperationalError("INSERT INTO tokens", {}, Exception("disk full"))

    monkeypatch.setattr(idp.oidc.server, "rotate_refresh_token", failing_rotate)
    failed = refresh(client, rp, old)
    assert failed.status_code == 503
    assert failed.get_json()["error"] == "temporarily_unavailable"
    monkeypatch.setattr(idp.oidc.server, "rotate_refresh_token", real_rotate)
    again = refresh(client, rp, old)
    assert again.status_code == 200, again.get_json()
    family = _family_of(svc, tokens.body["access_token"])
    assert family.revoked_at is None
    assert _events(svc, "token.refresh_reuse", rp.client_id) == 0
    # The rotation that did happen works as usual: the new refresh token renews again.
    assert refresh(client, rp, again.get_json()["refresh_token"]).status_code == 200


def test_a_failed_id_token_step_rolls_the_rotation_back(client, browser, rp, shared_student,
                                                        svc, monkeypatch):
    """A failure later in the same response (the ID token) also undoes the claim and the
    new token: nothing half-issued is left that the client never received."""
    import idp.oidc.grants
    from idp.store.models import Token

    tokens = sign_in_tokens(browser, rp, shared_student, scope=OFFLINE)
    with svc.db.session() as db:
        before = len(db.scalars(select(Token).where(
            Token.family_id == _family_of(svc, tokens.body["access_token"]).id)).all())

    def failing_sign(**kwargs):
        raise OperationalError("SELECT signing_keys", {}, Exception("gone"))

    monkeypatch.setattr(idp.oidc.grants, "issue_id_token", failing_sign)
    assert refresh(client, rp, tokens.body["refresh_token"]).status_code == 503
    monkeypatch.undo()
    with svc.db.session() as db:
        after = len(db.scalars(select(Token).where(
            Token.family_id == _family_of(svc, tokens.body["access_token"]).id)).all())
    assert after == before
    assert refresh(client, rp, tokens.body["refresh_token"]).status_code == 200


def test_the_same_refresh_token_twice_at_once_succeeds_exactly_once(app, browser, rp,
                                                                     shared_student):
    tokens = sign_in_tokens(browser, rp, shared_student, scope=OFFLINE)
    barrier = threading.Barrier(2)
    results: list = []

    def race() -> None:
        c = app.test_client()
        barrier.wait()
        response = refresh(c, rp, tokens.body["refresh_token"])
        results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=race) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(code for code, _ in results) == [200, 400], results
    assert [body["error"] for code, body in results if code == 400] == ["invalid_grant"]


# ----------------------------------------------------------------------------- codes
@pytest.fixture
def owner_and_thief(make_rp):
    return make_rp(host="owner.example.test"), make_rp(host="thief.example.test")


def _steal(client, thief, owner, query, verifier):
    return token_request(client, thief, {"grant_type": "authorization_code",
                                         "code": query["code"], "code_verifier": verifier,
                                         "redirect_uri": owner.redirect_uri})


def test_a_code_presented_by_the_wrong_client_is_not_spent(client, browser, owner_and_thief,
                                                           shared_student, svc):
    """A hostile app that got another app's code (with its PKCE verifier, even) can
    neither redeem it nor burn it: the app it was issued to still redeems it."""
    owner, thief = owner_and_thief
    query, verifier = browser.sign_in_and_authorize(owner, shared_student)
    for _ in range(3):
        stolen = _steal(client, thief, owner, query, verifier)
        assert stolen.status_code == 400
        assert stolen.get_json()["error"] == "invalid_grant"
        assert "access_token" not in stolen.get_json()
    assert _events(svc, "token.code_wrong_client", thief.client_id) == 3
    mine = redeem(client, owner, query["code"], verifier)
    assert mine.status_code == 200, mine.get_json()
    assert userinfo(client, mine.get_json()["access_token"]).status_code == 200


def test_a_spent_code_replayed_by_another_app_does_not_end_the_owners_tokens(
        client, browser, owner_and_thief, shared_student, svc):
    owner, thief = owner_and_thief
    query, verifier = browser.sign_in_and_authorize(owner, shared_student)
    mine = redeem(client, owner, query["code"], verifier).get_json()
    replay = _steal(client, thief, owner, query, verifier)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert userinfo(client, mine["access_token"]).status_code == 200
    # The hostile app's try is on record, as with a live code.
    assert _events(svc, "token.code_wrong_client", thief.client_id) == 1


def test_a_spent_code_replayed_by_its_own_client_still_revokes(client, browser, rp,
                                                               shared_student):
    """The RFC 6749 §4.1.2 defence stays: a replay by the code's own client ends what the
    code issued."""
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    first = redeem(client, rp, query["code"], verifier).get_json()
    again = redeem(client, rp, query["code"], verifier)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert userinfo(client, first["access_token"]).status_code == 401


def test_concurrent_wrong_and_right_client_the_right_one_wins(app, browser, owner_and_thief,
                                                              shared_student):
    owner, thief = owner_and_thief
    query, verifier = browser.sign_in_and_authorize(owner, shared_student)
    barrier = threading.Barrier(4)
    results: dict[str, list[int]] = {"owner": [], "thief": []}

    def race(who, rp) -> None:
        c = app.test_client()
        barrier.wait()
        if who == "owner":
            response = redeem(c, rp, query["code"], verifier)
        else:
            response = _steal(c, rp, owner, query, verifier)
        results[who].append(response.status_code)

    threads = [threading.Thread(target=race, args=("thief", thief)) for _ in range(3)]
    threads.append(threading.Thread(target=race, args=("owner", owner)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {"owner": [200], "thief": [400, 400, 400]}


def _paused_first_redemption(app, rp, code: str, verifier: str, monkeypatch):
    """Start the code's redemption in a thread and hold it after the store's take, before
    its tokens are written (where a replay can slip in). Returns (resume, answer): call
    ``resume()`` to let it write, then ``answer`` holds its response."""
    import idp.oidc.server

    real_write = idp.oidc.server.insert_family_and_token
    taken, go = threading.Event(), threading.Event()

    def held_write(*args, **kwargs):
        taken.set()
        assert go.wait(30)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(idp.oidc.server, "insert_family_and_token", held_write)
    answer: list = []
    worker = threading.Thread(target=lambda: answer.append(
        redeem(app.test_client(), rp, code, verifier)))
    worker.start()
    assert taken.wait(30)

    def resume() -> None:
        go.set()
        worker.join(30)
    return resume, answer


def test_a_replay_racing_the_first_redemption_revokes_what_it_would_issue(
        app, client, browser, rp, shared_student, svc, monkeypatch):
    """Abuse case: a stolen code is replayed by its own client (a copied request, a proxy
    retry, an attacker with the client's secret) while the first redemption is between
    taking the code and writing its tokens. Before, the replay found no family to revoke
    and the first redemption's tokens lived on. Now the replay leaves a revoked family in
    the code's place: the first redemption's write fails as a replay too, nothing issued."""
    query, verifier = browser.sign_in_and_authorize(rp, shared_student)
    resume, first = _paused_first_redemption(app, rp, query["code"], verifier, monkeypatch)
    replay = redeem(client, rp, query["code"], verifier)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    resume()
    assert first[0].status_code == 400, first[0].get_json()
    assert first[0].get_json()["error"] == "invalid_grant"
    from idp.oidc.tokens import token_hash
    from idp.store.models import Token, TokenFamily
    with svc.db.session() as db:
        family = db.scalar(select(TokenFamily).where(
            TokenFamily.code_hash == token_hash(query["code"])))
        assert family.revoked_reason == "code_replay"
        assert db.scalars(select(Token).where(Token.family_id == family.id)).all() == []
    assert _events(svc, "token.code_replay", rp.client_id) == 1  # one replay, one event


def test_another_apps_replay_racing_the_first_redemption_does_not_burn_it(
        app, client, browser, owner_and_thief, shared_student, svc, monkeypatch):
    """A hostile app replaying the owner's code at that moment leaves nothing behind: the
    owner's redemption writes its tokens and they work."""
    owner, thief = owner_and_thief
    query, verifier = browser.sign_in_and_authorize(owner, shared_student)
    resume, first = _paused_first_redemption(app, owner, query["code"], verifier,
                                             monkeypatch)
    stolen = _steal(client, thief, owner, query, verifier)
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"
    resume()
    assert first[0].status_code == 200, first[0].get_json()
    assert userinfo(client, first[0].get_json()["access_token"]).status_code == 200


# ----------------------------------------------------------------------------- store
def test_take_if_compares_then_takes(any_store):
    any_store.put("code:x", {"client_id": "a", "n": 1}, 30)
    wrong = any_store.take_if("code:x", "client_id", "b")
    assert (wrong.record, wrong.present) == (None, True)
    assert any_store.get("code:x") == {"client_id": "a", "n": 1}
    right = any_store.take_if("code:x", "client_id", "a")
    assert (right.record, right.present) == ({"client_id": "a", "n": 1}, True)
    # Taken, it stays marked spent until its TTL ends: a later take knows it was spent.
    again = any_store.take_if("code:x", "client_id", "a")
    assert (again.record, again.present, again.spent) == (None, True, {"client_id": "a", "n": 1})
    other = any_store.take_if("code:x", "client_id", "b")
    assert (other.record, other.spent) == (None, {"client_id": "a", "n": 1})
    assert 59 <= any_store.ttl("code:x") <= 60  # kept spent at least SPENT_KEPT_FOR
    # A code taken in its last second keeps its spent mark a while (its redemption runs).
    any_store.put("code:late", {"client_id": "a"}, 1)
    assert any_store.take_if("code:late", "client_id", "a").record == {"client_id": "a"}
    assert any_store.ttl("code:late") >= 59
    never = any_store.take_if("code:none", "client_id", "a")
    assert (never.record, never.present, never.spent) == (None, False, None)


def test_take_if_is_atomic_under_concurrency(any_store):
    any_store.put("code:y", {"client_id": "a"}, 30)
    barrier = threading.Barrier(8)
    taken: list[bool] = []

    def grab(expected: str) -> None:
        barrier.wait()
        taken.append(any_store.take_if("code:y", "client_id", expected).record is not None)

    threads = [threading.Thread(target=grab, args=("a" if i % 2 else "b",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert taken.count(True) == 1


@pytest.mark.parametrize("grant", ["authorization_code", "refresh_token"])
def test_a_failure_after_the_grants_write_still_answers_with_the_tokens(
        grant, client, browser, rp, shared_student, svc, monkeypatch):
    """The event records cannot be written anywhere (Redis and the database's fallback both
    away) once the grant's row is committed: the tokens are issued, so they are answered.
    An error here would make the client retry a spent code or a used refresh token, and
    the retry would revoke its own tokens as a replay."""
    def nowhere_to_write(*args, **kwargs):
        raise OperationalError("INSERT INTO audit_events", {}, Exception("gone"))

    if grant == "authorization_code":
        query, verifier = browser.sign_in_and_authorize(rp, shared_student, scope=OFFLINE)
        monkeypatch.setattr(svc.events, "audit", nowhere_to_write)
        answer = redeem(browser.c, rp, query["code"], verifier)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
    else:
        first = sign_in_tokens(browser, rp, shared_student, scope=OFFLINE).body
        monkeypatch.setattr(svc.events, "audit", nowhere_to_write)
        answer = refresh(client, rp, first["refresh_token"])
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
    monkeypatch.undo()
    assert userinfo(client, body["access_token"]).status_code == 200
    assert _family_of(svc, body["access_token"]).revoked_at is None
    # The refresh token it carries renews as usual: nothing was taken for a replay.
    assert refresh(client, rp, body["refresh_token"]).status_code == 200


def test_only_a_refresh_token_refreshes(client, browser, rp, shared_student):
    """The refresh grant looks the value up as a refresh token only: the access token, a
    refresh token changed by one character, or an over-long value is invalid_grant, and
    none of them spends the real refresh token."""
    tokens = sign_in_tokens(browser, rp, shared_student, scope=OFFLINE).body
    real = tokens["refresh_token"]
    tampered = real[:-1] + ("A" if real[-1] != "A" else "B")
    for value in (tokens["access_token"], tampered, "x" * 600):
        answer = refresh(client, rp, value)
        assert answer.status_code == 400, value
        assert answer.get_json()["error"] == "invalid_grant"
    renewed = refresh(client, rp, real)
    assert renewed.status_code == 200, renewed.get_json()
    assert renewed.get_json()["refresh_token"] != real
