"""The card sign-in when Redis fails just as it finishes. The card's check and the code go
to Redis in one batch (idp.auth.card_views.verify), which the code's answer sends before the
answer is made (idp.oidc.views._answer): so a batch Redis loses is seen where the browser can
still be sent the long way, through /authorize. Nothing the child did is lost, and nothing
that did not happen is recorded. Runs on PostgreSQL + Redis (the in-process store's batches
cannot fail)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from idp.oidc.interaction import LoginTransaction
from idp.store.models import AuditEvent
from tests.card.helpers import CardBrowser, token_for
from tests.card.test_card_flow import bind_directly
from tests.conftest import redeem
from tests.faults import redis_drops_the_batch_holding

pytestmark = pytest.mark.postgres


def _events(svc, account_id: str, event: str) -> list[AuditEvent]:
    svc.events.flush()
    with svc.db.session() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == event,
                                                        AuditEvent.account_id == account_id)))


def _sign_in(browser: CardBrowser, card, rp) -> dict:
    txn, _verifier = browser.start_authorization(rp)
    return browser.follow_json_redirect(browser.verify(token_for(card, browser.page_challenge(txn)),
                                                       txn), rp)


def test_redis_losing_the_codes_batch_sends_the_card_page_the_long_way(crl_app, crl_svc,
                                                                       new_card, student, rp):
    card = new_card()
    bind_directly(crl_svc, student, card)
    _sign_in(CardBrowser(crl_app.test_client()), card, rp)  # agreed to the app once
    checks_before = len(_events(crl_svc, student.id, "login.card"))
    codes_before = len(_events(crl_svc, student.id, "authorize.code_issued"))
    browser = CardBrowser(crl_app.test_client())
    txn, verifier = browser.start_authorization(rp, state="card-blip")
    token = token_for(card, browser.page_challenge(txn))
    with redis_drops_the_batch_holding(crl_svc.store, ":code:") as refused:
        answer = browser.verify(token, txn)
    assert refused, "no batch with a code was sent"
    assert answer.status_code == 200, answer.get_json()
    target = answer.get_json()["redirect"]
    assert not target.startswith(rp.redirect_uri), "a code went to the app unstored"
    assert target.startswith("/authorize?") and f"txn={txn}" in target, target
    stored = crl_svc.store.get(LoginTransaction.key_for(txn))
    assert stored is not None and stored["authenticated_at"]
    # The card's check happened: recorded (from the lost batch, to the database at once).
    # The code's issue did not: not recorded.
    checks = _events(crl_svc, student.id, "login.card")
    assert len(checks) == checks_before + 1 and checks[-1].outcome == "ok"
    assert len(_events(crl_svc, student.id, "authorize.code_issued")) == codes_before
    # Redis is back: /authorize answers the sign-in the child made (no second PIN).
    query = browser.finish(browser.c.get(target), rp)
    assert query["state"] == "card-blip"
    assert redeem(browser.c, rp, query["code"], verifier).status_code == 200
    assert len(_events(crl_svc, student.id, "authorize.code_issued")) == codes_before + 1
