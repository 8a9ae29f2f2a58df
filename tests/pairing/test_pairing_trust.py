"""Issue 8 on the provider side of tablet pairing: the bridge is told whose login a code
belongs to (app, provider host, school, start time in Japan time), a code completes once, and
guessing from a school's address slows the bridge lookups but never the tablet's own poll."""

from __future__ import annotations

import datetime as dt
import time

from tests.card.helpers import make_token
from tests.card.test_card_flow import bind_directly
from tests.pairing.test_pairing import SchoolPc, Tablet, fresh_ip, small_pairing_allowance


def test_the_bridge_is_told_app_host_school_and_japan_time(crl_app, crl_svc, rp):
    tablet = Tablet(crl_app.test_client())
    before = time.time()
    txn, _ = tablet.start_authorization(rp)
    body = tablet.new_code(txn)
    facts = SchoolPc(crl_app).fetch(body["code"]).get_json()
    assert facts["client_name"] == crl_svc.store.get("txn:" + txn)["client_name"]
    assert facts["provider_host"] == "127.0.0.1:5000"
    assert "school_name" in facts and facts["school_name"] is None  # not known before sign-in
    started = dt.datetime.fromisoformat(facts["started_at"])
    assert started.utcoffset() == dt.timedelta(hours=9)  # Japan time
    assert before - 1 <= started.timestamp() <= time.time() + 1


def test_a_completed_code_is_refused_the_second_time(crl_app, crl_svc, new_card, student, rp):
    # Someone who watched the code being typed tries it again on their own PC.
    card = new_card()
    bind_directly(crl_svc, student, card)
    tablet = Tablet(crl_app.test_client())
    txn, _ = tablet.start_authorization(rp)
    body = tablet.new_code(txn)
    first = SchoolPc(crl_app).fetch(body["code"]).get_json()
    done = SchoolPc(crl_app).post(body["code"], make_token(card.der, card.key,
                                                            first["challenge"]))
    assert done.status_code == 200
    again = SchoolPc(crl_app)
    assert again.fetch(body["code"]).status_code == 409  # finished, not yet read by the tablet
    replay = again.post(body["code"], make_token(card.der, card.key, first["challenge"]))
    assert replay.status_code == 409
    assert tablet.status(body).get_json()["state"] == "done"
    assert again.fetch(body["code"]).status_code == 404


def test_the_tablets_own_poll_is_never_slowed_by_a_guesser_on_its_address(
        crl_app, rp, monkeypatch):
    small_pairing_allowance(monkeypatch)
    school_nat = fresh_ip()
    tablet = Tablet(crl_app.test_client())
    tablet.c.environ_base["REMOTE_ADDR"] = school_nat
    txn, _ = tablet.start_authorization(rp)
    body = tablet.new_code(txn)
    guesser = SchoolPc(crl_app, ip=school_nat)
    answers = [guesser.fetch(code).status_code for code in ("AAAA-AAAA", "BBBB-BBBB",
                                                            "CCCC-CCCC", "DDDD-DDDD")]
    assert answers[-1] == 429  # the address is slowed for bridge lookups
    # A stranger's browser peeking at the code from there is slowed too ...
    peek = crl_app.test_client().get(body["status_url"],
                                     environ_base={"REMOTE_ADDR": school_nat})
    assert peek.status_code == 429
    # ... but the tablet that asked for the code keeps polling it.
    for _ in range(3):
        status = tablet.status(body)
        assert status.status_code == 200 and status.get_json()["state"] == "waiting"


def test_bridge_lookups_reserve_before_looking(crl_app, rp, monkeypatch):
    """Parallel wrong codes from one address: no more than the allowance are looked up."""
    import threading

    from idp.auth import pairing

    small_pairing_allowance(monkeypatch, free=4)
    looked: list[int] = []
    real = pairing.normalize_code

    def slow_normalize(raw):
        looked.append(1)
        time.sleep(0.2)
        return real(raw)

    monkeypatch.setattr(pairing, "normalize_code", slow_normalize)
    guesser = SchoolPc(crl_app)
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def guess(i: int) -> None:
        barrier.wait()
        statuses.append(guesser.fetch(f"{'ABCDEFGHJK'[i]}AAA-AAAA").status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # Four looked up (and missed, which reaches the limit: "slow down"), six never looked up.
    assert len(looked) == 4 and statuses == [429] * 10
