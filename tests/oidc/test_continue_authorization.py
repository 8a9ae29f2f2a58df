"""The sign-in and consent pages answer the app themselves when they can
(idp.oidc.views.continue_authorization): the browser goes straight back to the app with its
code, with no round trip through /authorize. Anything /authorize would show first (the
consent page, a refusal) still goes through /authorize, which shows it; and nothing the
round trip would have refused gets a code this way."""

from __future__ import annotations

import pytest

from idp.oidc.interaction import LoginTransaction
from idp.signin.context import ACR_PASSWORD
from tests.conftest import query_of, redeem
from tests.faults import redis_drops_the_batch_holding
from tests.oidc.conftest import verify_id_token


def _agreed(new_browser, rp, student) -> None:
    """The student agreed to the app once (in another browser): later sign-ins need no
    consent page."""
    new_browser().sign_in_and_authorize(rp, student)


def _to_password_page(browser, rp, **params):
    response, verifier = browser.authorize(rp, **params)
    txn = query_of(response.headers["Location"])["txn"]
    return browser.follow_to_login(response), txn, verifier


def test_the_password_page_sends_the_browser_to_the_app_with_its_code(
        new_browser, rp, shared_student, svc):
    _agreed(new_browser, rp, shared_student)
    browser = new_browser()
    page, txn, verifier = _to_password_page(browser, rp, state="st-9", nonce="n-9")
    signed_in = browser.password_login(page, shared_student)
    assert signed_in.status_code == 303
    location = signed_in.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?"), location
    query = query_of(location)
    assert query["state"] == "st-9" and query["iss"] == svc.settings.issuer
    # The code is what /authorize would have issued: PKCE-bound, with the nonce and the
    # sign-in's level.
    tokens = redeem(browser.c, rp, query["code"], verifier)
    assert tokens.status_code == 200, tokens.get_json()
    claims = verify_id_token(browser.c, rp, tokens.get_json()["id_token"])
    assert claims["nonce"] == "n-9" and claims["acr"] == ACR_PASSWORD
    # The transaction is over: it cannot be resumed into a second code.
    assert svc.store.get(LoginTransaction.key_for(txn)) is None
    assert redeem(browser.c, rp, query["code"], verifier).status_code == 400


def test_an_app_not_agreed_to_yet_still_shows_the_consent_page(new_browser, rp,
                                                                shared_student):
    browser = new_browser()
    page, txn, _verifier = _to_password_page(browser, rp)
    signed_in = browser.password_login(page, shared_student)
    location = signed_in.headers["Location"]
    assert location.startswith("/authorize?") and query_of(location)["mynagate_txn"] == txn
    assert browser.c.get(location).headers["Location"].startswith("/consent")
    # Agreeing answers the app at once too.
    agreed = browser.consent(browser.c.get(location), allow=True)
    assert agreed.status_code == 303 and agreed.headers["Location"].startswith(
        rp.redirect_uri + "?")
    assert "code" in query_of(agreed.headers["Location"])


def test_an_app_switched_off_during_the_sign_in_gets_no_code(new_browser, rp,
                                                              shared_student, svc):
    """A school switches an app off while a child is on the sign-in page: the page sends
    the browser to /authorize, which refuses, as the round trip always did."""
    from idp.store.models import Client

    _agreed(new_browser, rp, shared_student)
    browser = new_browser()
    page, _txn, _verifier = _to_password_page(browser, rp)
    with svc.db.session() as s:
        s.get(Client, rp.client_id).enabled = False
    signed_in = browser.password_login(page, shared_student)
    location = signed_in.headers["Location"]
    assert location.startswith("/authorize?"), location
    refused = browser.c.get(location)
    assert refused.status_code == 400 and "Location" not in refused.headers


def test_a_redirect_uri_removed_during_the_sign_in_gets_no_code(new_browser, make_rp,
                                                                shared_student, svc):
    """A hostile or mistaken change of the app's registration between the start and the
    end of a sign-in: the stored request is validated again, never trusted as it was."""
    from idp.store.models import Client

    rp = make_rp(redirect_uris=["https://rp.example.test/callback",
                                "https://rp.example.test/other"])
    _agreed(new_browser, rp, shared_student)
    browser = new_browser()
    page, _txn, _verifier = _to_password_page(browser, rp)
    with svc.db.session() as s:
        s.get(Client, rp.client_id).redirect_uris = ["https://rp.example.test/other"]
    signed_in = browser.password_login(page, shared_student)
    location = signed_in.headers["Location"]
    assert location.startswith("/authorize?"), location
    assert "code=" not in location
    shown = browser.c.get(location)
    assert shown.status_code == 400 and "Location" not in shown.headers


def test_a_graduate_is_shown_the_refusal_page_not_sent_a_code(new_browser, rp, svc, school,
                                                               make_student):
    from datetime import datetime, timedelta

    from idp.accounts.lifecycle import graduate
    from idp.store.models import Account

    student = make_student()
    _agreed(new_browser, rp, student)
    with svc.db.session() as s:
        graduate(s, s.get(Account, student.id), actor=None,
                 now=datetime.now() - timedelta(days=1), batch_id="test")
    browser = new_browser()
    page, _txn, _verifier = _to_password_page(browser, rp)
    signed_in = browser.password_login(page, student)
    location = signed_in.headers["Location"]
    assert location.startswith("/authorize?") and "code=" not in location
    assert browser.c.get(location).status_code == 403


def test_a_consent_refusal_goes_to_the_app_as_access_denied(new_browser, rp, shared_student,
                                                            svc):
    browser = new_browser()
    page, _txn, _verifier = _to_password_page(browser, rp, state="no-thanks")
    signed_in = browser.password_login(page, shared_student)
    refused = browser.consent(browser.c.get(signed_in.headers["Location"]), allow=False)
    assert refused.status_code == 303
    query = query_of(refused.headers["Location"])
    assert refused.headers["Location"].startswith(rp.redirect_uri + "?")
    assert query["error"] == "access_denied" and query["state"] == "no-thanks"
    assert query["iss"] == svc.settings.issuer and "code" not in query


def test_a_store_failure_while_answering_sends_the_browser_the_long_way(
        new_browser, rp, shared_student, svc, monkeypatch):
    """Redis cannot take the code just as the child signs in: no 503 on the sign-in page
    and nothing lost; the browser goes to /authorize, which answers once the store is back."""
    from idp.store.shortlived import StoreUnavailable

    _agreed(new_browser, rp, shared_student)
    browser = new_browser()
    page, txn, verifier = _to_password_page(browser, rp, state="later")
    real_put = svc.store.put

    def refusing_codes(key, value, ttl):
        if key.startswith("code:"):
            raise StoreUnavailable("the store is away")
        return real_put(key, value, ttl)

    monkeypatch.setattr(svc.store, "put", refusing_codes)
    signed_in = browser.password_login(page, shared_student)
    location = signed_in.headers["Location"]
    assert signed_in.status_code == 303 and location.startswith("/authorize?"), location
    assert svc.store.get(LoginTransaction.key_for(txn)) is not None  # not finished
    monkeypatch.setattr(svc.store, "put", real_put)
    answered = browser.c.get(location)
    assert answered.status_code == 302 and answered.headers["Location"].startswith(
        rp.redirect_uri + "?")
    query = query_of(answered.headers["Location"])
    assert query["state"] == "later"
    assert redeem(browser.c, rp, query["code"], verifier).status_code == 200


def _code_events(svc, account_id: str) -> int:
    from idp.store.models import AuditEvent

    svc.events.flush()
    with svc.db.session() as db:
        return db.query(AuditEvent).filter_by(event="authorize.code_issued",
                                              account_id=account_id).count()


@pytest.mark.postgres
def test_redis_dropping_the_codes_batch_sends_the_browser_the_long_way_and_records_no_code(
        new_browser, rp, shared_student, svc):
    """The batch with the code, its audit event and the transaction's end is lost as it is
    sent (Redis restarting): no code reaches the app, no issue is recorded (the record is
    not written to the database instead), and the transaction, with its sign-in, lives on
    for /authorize, which answers once Redis is back."""
    _agreed(new_browser, rp, shared_student)
    account_id = shared_student.id
    before = _code_events(svc, account_id)
    browser = new_browser()
    page, txn, verifier = _to_password_page(browser, rp, state="after-blip")
    with redis_drops_the_batch_holding(svc.store, ":code:") as refused:
        signed_in = browser.password_login(page, shared_student)
    assert refused, "the code's batch was never sent"
    location = signed_in.headers["Location"]
    assert signed_in.status_code == 303 and location.startswith("/authorize?"), location
    stored = svc.store.get(LoginTransaction.key_for(txn))
    assert stored is not None and stored["authenticated_at"]
    assert _code_events(svc, account_id) == before
    answered = browser.c.get(location)
    assert answered.status_code == 302, answered.get_data(as_text=True)[:300]
    query = query_of(answered.headers["Location"])
    assert query["state"] == "after-blip"
    assert redeem(browser.c, rp, query["code"], verifier).status_code == 200
    assert _code_events(svc, account_id) == before + 1


def test_a_database_failure_while_answering_sends_the_browser_the_long_way(
        new_browser, rp, shared_student, svc, monkeypatch):
    """The database cannot say what the child agreed to just as the sign-in finishes: the
    sign-in page answers with /authorize (which says it is busy, or answers), not a 503."""
    from sqlalchemy.exc import OperationalError

    _agreed(new_browser, rp, shared_student)
    browser = new_browser()
    page, txn, verifier = _to_password_page(browser, rp, state="db-blip")
    real_scopes = svc.consents.scopes

    def failing(*args, **kwargs):
        raise OperationalError("SELECT consents", {}, Exception("server closed the connection"))

    monkeypatch.setattr(svc.consents, "scopes", failing)
    signed_in = browser.password_login(page, shared_student)
    location = signed_in.headers["Location"]
    assert signed_in.status_code == 303 and location.startswith("/authorize?"), location
    assert browser.c.get(location).status_code == 503  # still away: busy, try again
    monkeypatch.setattr(svc.consents, "scopes", real_scopes)
    answered = browser.c.get(location)
    assert answered.status_code == 302
    query = query_of(answered.headers["Location"])
    assert query["state"] == "db-blip"
    assert redeem(browser.c, rp, query["code"], verifier).status_code == 200


def test_a_consent_answered_and_sent_straight_on_stores_nothing_for_the_transaction(
        new_browser, rp, shared_student, svc, monkeypatch):
    """An answered transaction ends: what the interaction changed in it is not written
    first (a write for nothing), and it is gone after."""
    _agreed(new_browser, rp, shared_student)
    browser = new_browser()
    page, txn, _verifier = _to_password_page(browser, rp)
    writes: list[str] = []
    for name in ("put", "put_if_present"):  # every way a transaction is written
        real = getattr(svc.store, name)
        monkeypatch.setattr(svc.store, name, lambda key, value, ttl, real=real: (
            writes.append(key), real(key, value, ttl))[1])
    signed_in = browser.password_login(page, shared_student)
    assert signed_in.headers["Location"].startswith(rp.redirect_uri + "?")
    assert LoginTransaction.key_for(txn) not in writes
    assert svc.store.get(LoginTransaction.key_for(txn)) is None


@pytest.mark.postgres
def test_no_code_issued_event_for_a_lost_code_even_when_the_event_log_must_start_again(
        new_browser, rp, shared_student, svc, monkeypatch):
    """Redis away: the event log's group must be made again (as after the drainer's own
    failure), and cannot be. The code's event still goes with the code's batch only, never
    around it to the database: no issue is recorded for a code Redis did not take."""
    import redis

    _agreed(new_browser, rp, shared_student)
    before = _code_events(svc, shared_student.id)
    browser = new_browser()
    page, _txn, _verifier = _to_password_page(browser, rp, state="away")

    def away(*args, **kwargs):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(svc.events, "_group_ready", False)
    monkeypatch.setattr(svc.events._r, "xgroup_create", away)
    with redis_drops_the_batch_holding(svc.store, ":code:") as refused:
        signed_in = browser.password_login(page, shared_student)
    monkeypatch.undo()
    assert refused
    location = signed_in.headers["Location"]
    assert location.startswith("/authorize?") and "code" not in query_of(location)
    assert _code_events(svc, shared_student.id) == before


def test_a_database_failure_looking_the_app_up_goes_the_long_way(
        new_browser, rp, shared_student, svc, monkeypatch):
    """The app's record is read (not cached) just as the database blips: the sign-in page
    still answers with /authorize, and the sign-in made in the transaction is kept."""
    from sqlalchemy.exc import OperationalError

    _agreed(new_browser, rp, shared_student)
    browser = new_browser()
    page, txn, verifier = _to_password_page(browser, rp, state="client-blip")

    def failing(*args, **kwargs):
        raise OperationalError("SELECT clients", {}, Exception("server closed the connection"))

    monkeypatch.setattr(svc.clients, "get", failing)
    signed_in = browser.password_login(page, shared_student)
    monkeypatch.undo()
    assert signed_in.status_code == 303, signed_in.get_data(as_text=True)[:300]
    location = signed_in.headers["Location"]
    assert location.startswith("/authorize?"), location
    stored = svc.store.get(LoginTransaction.key_for(txn))
    assert stored is not None and stored["authenticated_at"]
    answered = browser.c.get(location)
    assert answered.status_code == 302
    assert redeem(browser.c, rp, query_of(answered.headers["Location"])["code"],
                  verifier).status_code == 200


@pytest.mark.postgres
def test_a_batch_redis_took_but_whose_answer_was_lost_leaves_the_transaction_ended(
        new_browser, rp, shared_student, svc):
    """Redis ran the code's batch (code stored, event queued, transaction ended) and the
    answer was lost (a timeout, a failover): the outcome is unknown here, so the browser goes
    the long way, but the ended transaction is not written back (an answered request cannot
    be resumed), and the code's event is recorded once, as Redis took it."""

    _agreed(new_browser, rp, shared_student)
    before = _code_events(svc, shared_student.id)
    browser = new_browser()
    page, txn, _verifier = _to_password_page(browser, rp)
    with redis_drops_the_batch_holding(svc.store, ":code:", after_running=True) as lost:
        signed_in = browser.password_login(page, shared_student)
    assert lost and signed_in.headers["Location"].startswith("/authorize?")
    assert svc.store.get(LoginTransaction.key_for(txn)) is None
    assert _code_events(svc, shared_student.id) == before + 1


def test_every_pooled_connection_busy_is_a_busy_page_never_a_500(
        new_browser, rp, shared_student, svc, monkeypatch):
    """The database is there but saturated (every pooled connection in use for
    pool_timeout): the sign-in page goes the long way, and /authorize says "busy, try
    again" (503 with Retry-After) until a connection is free."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    _agreed(new_browser, rp, shared_student)
    browser = new_browser()
    page, _txn, verifier = _to_password_page(browser, rp, state="saturated")

    def saturated(*args, **kwargs):
        raise PoolTimeout("QueuePool limit of size 10 overflow 10 reached")

    monkeypatch.setattr(svc.clients, "get", saturated)
    signed_in = browser.password_login(page, shared_student)
    location = signed_in.headers["Location"]
    assert signed_in.status_code == 303 and location.startswith("/authorize?"), location
    busy = browser.c.get(location)
    assert busy.status_code == 503 and busy.headers["Retry-After"]
    monkeypatch.undo()
    answered = browser.c.get(location)
    assert answered.status_code == 302
    assert redeem(browser.c, rp, query_of(answered.headers["Location"])["code"],
                  verifier).status_code == 200


def test_the_line_for_an_event_left_to_its_batch_is_logged(monkeypatch):
    """What the log says when a code's batch got no answer (the event's key, to match it
    with what Redis took): logged, not an error of its own. (A logger of its own here: the
    module's is cached by structlog once first used, out of capture_logs' reach.)"""
    import structlog
    from structlog.testing import CapturingLogger

    from idp import event_log

    captured = CapturingLogger()
    monkeypatch.setattr(event_log, "log", structlog.wrap_logger(captured, processors=[]))
    event_log._left_to_redis({"event": "authorize.code_issued", "event_key": "k1"})
    assert [(call.method_name, call.kwargs) for call in captured.calls] == [
        ("warning", {"event": "event_recorded_only_with_its_batch",
                     "recorded": "authorize.code_issued", "event_key": "k1"})]
