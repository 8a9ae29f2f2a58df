"""/healthz and /readyz: no session, no cache, never a 500, 503 + Retry-After when a
backend is away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.ops.conftest import closed_port

PROBES = ("/healthz", "/readyz")


def test_healthz_is_ok_without_asking_any_backend(client, svc, monkeypatch):
    def boom(*_args, **_kwargs):
        raise AssertionError("the liveness probe asked a backend")

    monkeypatch.setattr(svc.db, "ping", boom)
    monkeypatch.setattr(svc.store, "ping", boom)
    monkeypatch.setattr(svc.store, "get", boom)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_lists_every_check_and_is_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "store", "signing_keys", "revocation_data"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert response.headers["Cache-Control"] == "no-store"
    assert "Retry-After" not in response.headers


@pytest.mark.parametrize("path", PROBES)
def test_probes_never_create_a_session(client, path):
    response = client.get(path, query_string={"lang": "en"})  # lang= would store a choice
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert client.get_cookie("mynagate_session") is None


@pytest.mark.parametrize("path", PROBES)
def test_probes_do_not_touch_an_existing_session(client, path, svc, monkeypatch):
    """A probe that happens to carry a session cookie (a curious admin's browser) neither
    reads it nor refreshes it."""
    client.set_cookie("mynagate_session", "x" * 43)
    reads = []
    monkeypatch.setattr(svc.store, "get", lambda key: reads.append(key))
    response = client.get(path)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert not [key for key in reads if key.startswith("sess:")]


def test_readyz_when_redis_is_unreachable_is_503_with_retry_after(client, svc, monkeypatch):
    from idp.store.shortlived import RedisStore

    monkeypatch.setattr(svc, "store", RedisStore(f"redis://127.0.0.1:{closed_port()}/0"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == "failed"
    assert body["checks"]["store"]["status"] == "failed"
    assert body["checks"]["store"]["reason"] == "unavailable (StoreUnavailable)"
    assert body["checks"]["database"]["status"] == "ok"
    # The address of the store is not shown to whoever asks.
    assert "127.0.0.1" not in response.get_data(as_text=True)
    # Alive all the same: only readiness depends on the backends.
    assert client.get("/healthz").status_code == 200


def test_readyz_when_the_database_is_away_is_503(client, svc, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def away():
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(svc.db, "ping", away)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == {
        "status": "failed", "reason": "unavailable (OperationalError)"}


def test_readyz_never_answers_500_even_when_a_check_has_a_bug(client, svc, monkeypatch):
    def bug(*_args):
        raise ZeroDivisionError("a bug in a check")

    monkeypatch.setattr(svc.keys, "for_alg", bug)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["signing_keys"]["status"] == "failed"


def test_readyz_with_fresh_crls_is_ok(crl_app):
    response = crl_app.test_client().get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"]["revocation_data"] == {"status": "ok"}


def test_a_crl_past_next_update_is_not_ready(crl_app):
    from idp.ops.readiness import NotReady, check_revocation_data

    svc = crl_app.extensions["mynagate"]
    check_revocation_data(svc)  # fresh now
    later = datetime.now(UTC) + timedelta(days=400)
    with pytest.raises(NotReady, match="past nextUpdate"):
        check_revocation_data(svc, now=later)


def test_a_crl_source_that_never_loaded_is_not_ready(crl_app, monkeypatch):
    svc = crl_app.extensions["mynagate"]
    monkeypatch.setattr(type(svc.card), "loaded_crls", lambda _self: [])
    response = crl_app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["revocation_data"] == {
        "status": "failed", "reason": "1 of 1 CRL source(s) not loaded"}


def test_probes_are_not_throttled_or_csrf_checked(client):
    for _ in range(50):
        assert client.get("/healthz").status_code == 200
    # A POST is not an accepted method, and is refused as such, not as a CSRF failure.
    assert client.post("/healthz").status_code == 405
