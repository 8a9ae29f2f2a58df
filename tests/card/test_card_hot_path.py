"""The card sign-in's hot path (idp.accounts.cards.account_for_card): the binding read
outside a transaction, the account from the process's cache, the last-use time written at
most once a minute, the login.card event through the event log. What it must never trade
for speed: a lock or a revoked binding seen at once, and every outcome audited."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from idp.accounts.cards import LAST_USED_PRECISION
from idp.store.models import Account, AuditEvent, CardBinding
from tests.card.helpers import error_of
from tests.card.test_card_flow import bind_directly


def _binding(svc, account_id: str) -> CardBinding:
    with svc.db.session() as db:
        return db.scalar(select(CardBinding).where(CardBinding.account_id == account_id))


def _card_events(svc, account_id: str) -> list[AuditEvent]:
    svc.events.flush()
    with svc.db.session() as db:
        return list(db.scalars(select(AuditEvent).where(
            AuditEvent.event == "login.card", AuditEvent.account_id == account_id)))


def _assert_refused(browser, card, svc, student, code: str, reason: str) -> None:
    """A fresh browser's card sign-in is refused with ``code``, and audited once with
    ``reason``."""
    refused = browser.use_card(card)
    assert refused.status_code == 403
    assert error_of(refused) == code
    reasons = [e.details.get("reason") for e in _card_events(svc, student.id)
               if e.outcome == "refused"]
    assert reasons == [reason]


def test_last_use_is_written_at_most_once_a_minute(card_browser, crl_svc, new_card, student,
                                                   crl_app):
    card = new_card()
    bind_directly(crl_svc, student, card)
    assert card_browser.use_card(card).status_code == 200
    first = _binding(crl_svc, student.id).last_used_at
    assert first is not None
    again = type(card_browser)(crl_app.test_client())
    assert again.use_card(card).status_code == 200
    assert _binding(crl_svc, student.id).last_used_at == first  # within the minute
    # A minute later the next sign-in moves it.
    with crl_svc.db.session() as db:
        db.execute(update(CardBinding).where(CardBinding.account_id == student.id)
                   .values(last_used_at=first - LAST_USED_PRECISION - timedelta(seconds=1)))
    third = type(card_browser)(crl_app.test_client())
    assert third.use_card(card).status_code == 200
    assert _binding(crl_svc, student.id).last_used_at > first - LAST_USED_PRECISION


def test_each_card_sign_in_is_an_audit_event_with_its_school(card_browser, crl_svc, new_card,
                                                           student, crl_app):
    """The last-use time is skipped within a minute; the audit event never is."""
    card = new_card()
    bind_directly(crl_svc, student, card)
    for _ in range(2):
        assert type(card_browser)(crl_app.test_client()).use_card(card).status_code == 200
    events = [e for e in _card_events(crl_svc, student.id) if e.outcome == "ok"]
    assert len(events) == 2
    with crl_svc.db.session() as db:
        school_id = db.get(Account, student.id).school_id
    assert school_id and {e.school_id for e in events} == {school_id}
    assert all(e.ip and e.details["serial"] for e in events)


def test_a_lock_stops_the_card_at_once_despite_the_cached_account(card_browser, crl_svc,
                                                                  new_card, student, crl_app):
    """The account comes from the process's cache: a lock committed anywhere must reach it
    before the next card sign-in (the cache is told on commit), or a locked pupil's card
    would still sign in."""
    card = new_card()
    bind_directly(crl_svc, student, card)
    assert card_browser.use_card(card).status_code == 200  # the account is cached now
    with crl_svc.db.session() as db:
        db.get(Account, student.id).locked = True
    _assert_refused(type(card_browser)(crl_app.test_client()), card, crl_svc, student,
                    "card_not_linked", "account_inactive")


def test_a_revoked_binding_is_refused_at_once_and_audited(card_browser, crl_svc, new_card,
                                                          student, crl_app):
    card = new_card()
    bind_directly(crl_svc, student, card)
    assert card_browser.use_card(card).status_code == 200
    with crl_svc.db.session() as db:
        db.execute(update(CardBinding).where(CardBinding.account_id == student.id)
                   .values(status="revoked"))
    _assert_refused(type(card_browser)(crl_app.test_client()), card, crl_svc, student,
                    "certificate_revoked", "binding_revoked")
