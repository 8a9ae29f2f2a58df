"""The access tokens' copies in the short-lived store (idp.store.access_cache): UserInfo
answers from the copy without the database, and no copy outlives a revocation, a store that
lost it, or a snapshot that brings it back. Both backends (MYNAGATE_TEST_BACKEND=postgres)."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from idp.oidc.tokens import token_hash
from idp.store import access_cache
from idp.store.models import Account, Token
from idp.store.shortlived import StoreUnavailable
from tests.oidc.conftest import basic_auth, refresh, sign_in_tokens, userinfo

OFFLINE = "openid offline_access"


def _copy(svc, access: str) -> dict | None:
    return svc.store.get("at:" + token_hash(access))


class _Statements:
    def __init__(self, svc) -> None:
        self.count = 0
        self._engines = svc.db.engines

    def __enter__(self):
        for engine in self._engines:
            event.listen(engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc) -> None:
        for engine in self._engines:
            event.remove(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        self.count += 1


def test_userinfo_answers_from_the_copy_without_the_database(browser, rp, shared_student,
                                                              svc, client):
    access = sign_in_tokens(browser, rp, shared_student).body["access_token"]
    copy = _copy(svc, access)
    assert copy is not None and copy["client_id"] == rp.client_id
    assert access not in str(copy)  # keyed and stored by hash only
    svc.accounts.get(shared_student.id)  # the account is in the process's cache
    with _Statements(svc) as statements:
        response = userinfo(client, access)
    assert response.status_code == 200
    assert statements.count == 0


def test_a_store_that_lost_the_copy_falls_back_to_the_database(browser, rp, shared_student,
                                                               svc, client):
    access = sign_in_tokens(browser, rp, shared_student).body["access_token"]
    svc.store.delete("at:" + token_hash(access))
    assert userinfo(client, access).status_code == 200
    assert userinfo(client, access + "x").status_code == 401


def test_an_access_token_revoked_by_its_app_is_refused_at_once(browser, rp, shared_student,
                                                                svc, client):
    access = sign_in_tokens(browser, rp, shared_student).body["access_token"]
    assert userinfo(client, access).status_code == 200
    response = client.post("/revoke", data={"token": access, "token_type_hint": "access_token"},
                           headers=basic_auth(rp.client_id, rp.client_secret))
    assert response.status_code == 200
    assert _copy(svc, access) is None
    assert userinfo(client, access).status_code == 401


def test_refresh_reuse_ends_the_family_access_tokens_copies_included(browser, rp,
                                                                       shared_student, svc,
                                                                       client):
    first = sign_in_tokens(browser, rp, shared_student, scope=OFFLINE).body
    rotated = refresh(client, rp, first["refresh_token"]).get_json()
    assert userinfo(client, rotated["access_token"]).status_code == 200
    # A thief replays the rotated-out refresh token: the whole family goes.
    assert refresh(client, rp, first["refresh_token"]).status_code == 400
    for access in (first["access_token"], rotated["access_token"]):
        assert _copy(svc, access) is None
        assert userinfo(client, access).status_code == 401


def test_a_reuse_racing_the_rotation_leaves_no_copy_of_its_new_token(
        app, browser, rp, shared_student, svc, client, monkeypatch):
    """Abuse case: a thief replays the rotated-out refresh token while the rotation that
    used it is between its commit and writing its access token's copy. The replay revokes
    the family, but found no copy to delete: the copy written a moment later must not
    answer UserInfo for the next ten minutes."""
    import threading

    first = sign_in_tokens(browser, rp, shared_student, scope=OFFLINE).body
    real_remember = access_cache.remember
    committed, go = threading.Event(), threading.Event()

    def held_remember(*args, **kwargs):
        committed.set()
        assert go.wait(30)
        real_remember(*args, **kwargs)

    monkeypatch.setattr(access_cache, "remember", held_remember)
    answer: list = []
    worker = threading.Thread(target=lambda: answer.append(
        refresh(app.test_client(), rp, first["refresh_token"])))
    worker.start()
    assert committed.wait(30)
    monkeypatch.setattr(access_cache, "remember", real_remember)
    # The thief's replay: the rotation committed, so the presented token is used.
    assert refresh(client, rp, first["refresh_token"]).status_code == 400
    go.set()
    worker.join(30)
    rotated = answer[0].get_json()
    assert answer[0].status_code == 200, rotated
    assert _copy(svc, rotated["access_token"]) is None
    assert userinfo(client, rotated["access_token"]).status_code == 401


def test_the_revoked_family_mark_lives_as_long_as_any_access_token_can():
    from idp.clients.metadata import ACCESS_LIFETIME_RANGE

    assert ACCESS_LIFETIME_RANGE[1] == access_cache.REVOKED_FAMILY_TTL


def test_a_copy_for_a_revoked_family_is_never_written_inside_or_outside_a_batch(svc):
    from datetime import timedelta

    from idp.store.models import utcnow

    now = utcnow()
    copy = {"client_id": "c", "account_id": "a", "scope": "openid", "issued_at": now,
            "expires_at": now + timedelta(seconds=60)}
    svc.store.put("at-revoked-family:f1", {}, 60)
    access_cache.remember(svc.store, "h1", family_id="f1", **copy)
    with svc.store.batched():
        access_cache.remember(svc.store, "h2", family_id="f1", **copy)
        access_cache.remember(svc.store, "h3", family_id="f2", **copy)
    assert access_cache.recall(svc.store, "h1") is None
    assert access_cache.recall(svc.store, "h2") is None
    assert access_cache.recall(svc.store, "h3")["account_id"] == "a"


def test_a_copy_brought_back_after_the_account_was_cut_off_is_refused(browser, rp, make_student,
                                                                       svc, client):
    """A store restored from an old snapshot holds copies that were deleted: the account's
    ``tokens_revoked_at`` still refuses them."""
    from idp.accounts.access import revoke_account_tokens

    student = make_student()
    access = sign_in_tokens(browser, rp, student).body["access_token"]
    saved = _copy(svc, access)
    with svc.db.session() as db:
        revoke_account_tokens(db, student.id, "test")
    assert _copy(svc, access) is None
    svc.store.put("at:" + token_hash(access), saved, 300)  # the snapshot's copy returns
    assert userinfo(client, access).status_code == 401


def test_a_revocation_the_store_cannot_take_revokes_nothing(browser, rp, make_student, svc,
                                                             client, monkeypatch):
    """Redis down while an account is cut off: the revocation fails whole (the caller answers
    503 and is retried) instead of committing with a live copy left behind."""
    from idp.accounts.access import revoke_account_tokens

    student = make_student()
    access = sign_in_tokens(browser, rp, student).body["access_token"]

    def unavailable(_key: str) -> None:
        raise StoreUnavailable("down")

    monkeypatch.setattr(svc.store, "delete", unavailable)
    with pytest.raises(StoreUnavailable), svc.db.session() as db:
        revoke_account_tokens(db, student.id, "test")
    monkeypatch.undo()
    with svc.db.session() as db:
        row = db.scalar(select(Token).where(Token.access_token_hash == token_hash(access)))
        assert row.revoked_at is None
        assert db.get(Account, student.id).tokens_revoked_at is None
    assert userinfo(client, access).status_code == 200


def test_a_database_without_an_attached_store_refuses_to_revoke(svc):
    from idp.store.db import Database

    bare = Database(svc.db.url)
    try:
        with pytest.raises(RuntimeError), bare.session() as db:
            access_cache.forget(db, ["0" * 64])
    finally:
        bare.dispose()
