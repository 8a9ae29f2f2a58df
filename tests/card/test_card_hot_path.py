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


def _change_account_unheard(svc, student, **values) -> None:
    """Change the account's row the way another process would whose change message never
    came (a failed publish): straight on a connection, no session, so no cache hears it."""
    with svc.db.engine.begin() as conn:
        conn.execute(update(Account.__table__).where(Account.__table__.c.id == student.id)
                     .values(**values))


def test_a_lock_whose_message_was_lost_still_stops_the_card(card_browser, crl_svc, new_card,
                                                            student, crl_app):
    """Abuse case: the process that locked a pupil's account could not publish the change
    (Redis blinked), so this process's cache still says the account is active. The card
    sign-in reads the lock with the binding, so the locked card is refused at once, not
    when the cache entry expires."""
    card = new_card()
    bind_directly(crl_svc, student, card)
    assert card_browser.use_card(card).status_code == 200  # the account is cached now
    assert crl_svc.accounts.get(student.id).locked is False
    _change_account_unheard(crl_svc, student, locked=True)
    assert crl_svc.accounts.get(student.id).locked is False  # the cache did not hear it
    _assert_refused(type(card_browser)(crl_app.test_client()), card, crl_svc, student,
                    "card_not_linked", "account_inactive")


def test_an_unlock_whose_message_was_lost_lets_the_card_in(card_browser, crl_svc, new_card,
                                                           student, crl_app):
    """The other way round: the cache still says locked, the row says unlocked. The row
    decides, and the cache entry is read again, so the pupil is not kept out."""
    card = new_card()
    bind_directly(crl_svc, student, card)
    _change_account_unheard(crl_svc, student, locked=True)
    crl_svc.accounts.forget_all()
    assert crl_svc.accounts.get(student.id).locked is True  # cached as locked
    _change_account_unheard(crl_svc, student, locked=False)
    assert card_browser.use_card(card).status_code == 200
    assert crl_svc.accounts.get(student.id).locked is False
