"""The login transaction (idp.oidc.interaction.LoginTransaction): its own store key, bound
to the browser that started it, resumed only by the app it belongs to."""

from __future__ import annotations

import pytest
from flask import session

from idp.oidc.interaction import TXN_PARAM, LoginTransaction
from tests.conftest import query_of


def test_start_load_update_round_trip(app, svc):
    with app.test_request_context():
        session["browser"] = "browser-1"
        txn = LoginTransaction.start({"scope": "openid"}, card_required=True,
                                     client_name="算数", client_id="c1")
        assert svc.store.get(txn.key)["client_name"] == "算数"
        txn.change(authenticated_at=123.0)
        txn.save()
        again = LoginTransaction.load(txn.id)
        assert again == txn and again.authenticated_at == 123.0 and again.card_required
        assert query_of(again.resume_url())[TXN_PARAM] == txn.id
        again.finish()
        assert LoginTransaction.load(txn.id) is None


def test_change_refuses_an_unknown_field(app):
    with app.test_request_context():
        session["browser"] = "browser-2"
        txn = LoginTransaction.start({}, client_id="c1")
        with pytest.raises(AttributeError):
            txn.change(account_id="someone")


def test_signed_in_during_needs_a_sign_in_after_the_start():
    txn = LoginTransaction(id="t", browser="b", params={}, started=1000.5)
    assert not txn.signed_in_during(2000)  # not marked authenticated in this transaction
    txn.authenticated_at = 1001.0
    assert txn.signed_in_during(1000) and not txn.signed_in_during(998)


@pytest.mark.parametrize("txn_id", [None, "", "x" * 65, 12345])
def test_a_malformed_id_loads_nothing(app, txn_id):
    with app.test_request_context():
        assert LoginTransaction.load(txn_id) is None


def test_another_browser_cannot_load_the_transaction(app):
    """Someone who saw the URL (a classmate at the next PC, a network neighbour) has its id
    but not the browser it belongs to."""
    with app.test_request_context():
        session["browser"] = "owner"
        txn = LoginTransaction.start({}, client_id="c1")
    with app.test_request_context():
        session["browser"] = "classmate"
        assert LoginTransaction.load(txn.id) is None


def test_a_declined_transaction_of_one_app_does_not_answer_another(browser, make_rp,
                                                                 shared_student, svc):
    """A hostile app replays another app's transaction id (its consent was declined) in its
    own request: the transaction is ignored, the person is asked about this app."""
    first, second = make_rp(host="a.example.test"), make_rp(host="b.example.test")
    response, _ = browser.authorize(first)
    response = browser.password_login(browser.follow_to_login(response), shared_student)
    consent = browser.c.get(response.headers["Location"])
    txn_id = query_of(consent.headers["Location"])["txn"]
    # Declined and not yet answered (the consent page answers the app at once, ending the
    # transaction: this is the moment between the two).
    record = svc.store.get(LoginTransaction.key_for(txn_id))
    svc.store.put(LoginTransaction.key_for(txn_id), {**record, "denied": True}, 300)
    response, _ = browser.authorize(second, **{TXN_PARAM: txn_id})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/consent"), response.headers["Location"]
    assert txn_id not in response.headers["Location"]
