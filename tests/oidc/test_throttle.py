"""Issue 8, throttling that slows attackers and never locks a child out: reserved (atomic)
counters, device cookies, the per-address rule for a school behind one NAT address, and
the sustained-guessing flag. Every test runs on both backends (in-process store / Redis)."""

from __future__ import annotations

import re
import threading
import time

import pytest
from sqlalchemy import select

from idp.signin import throttle as throttle_mod
from idp.signin.throttle import (
    ACCOUNT_POLICY,
    DEVICE_COOKIE,
    GUESSING_FAILURES,
    IP_POLICY,
    Throttle,
)
from tests.conftest import Browser
from tests.oidc.conftest import random_ip
from tests.oidc.test_password_signin import _alert, _login_page, _post_login


@pytest.fixture
def clock(svc, monkeypatch):
    """The throttle's clock, movable without sleeping."""
    now = [time.time()]
    monkeypatch.setattr(svc.throttle, "_clock", lambda: now[0])
    return now


def _browser_at(app, ip: str | None = None) -> Browser:
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = ip or random_ip()
    return Browser(c)


def _guess(app, rp, who, n: int, ip: str | None = None) -> list[int]:
    """``n`` wrong passwords for ``who`` from one other browser; their statuses."""
    attacker = _browser_at(app, ip)
    page = _login_page(attacker, rp)
    return [_post_login(attacker, page, who.school_code, who.login_id, f"guess {i}").status_code
            for i in range(n)]


def _sign_in(browser, rp, who):
    return _post_login(browser, _login_page(browser, rp), who.school_code, who.login_id,
                       who.password)


# ----------------------------------------------------------------------- 1. reservations
def test_parallel_wrong_guesses_are_all_counted(app, rp, make_student, monkeypatch):
    """Twelve wrong guesses sent at once: only the free allowance reaches the password check
    (the rest are refused), and every checked guess is counted."""
    import idp.signin.password as views

    victim = make_student()
    checked: list[int] = []
    real_verify = views.verify_password

    def slow_verify(stored_hash, password):
        checked.append(1)
        time.sleep(0.3)  # a slow hash: every guess is in flight at the same time
        return real_verify(stored_hash, password)

    monkeypatch.setattr(views, "verify_password", slow_verify)
    attackers = [_browser_at(app) for _ in range(12)]
    pages = [_login_page(a, rp) for a in attackers]
    statuses: list[int] = []
    barrier = threading.Barrier(len(attackers))

    def guess(i: int) -> None:
        barrier.wait()
        statuses.append(_post_login(attackers[i], pages[i], victim.school_code,
                                    victim.login_id, f"guess {i}").status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(len(attackers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(checked) == ACCOUNT_POLICY.free_failures
    assert sorted(statuses) == [401] * ACCOUNT_POLICY.free_failures + [429] * 7
    # ... and the counted failures slow the next guess (the right password too).
    assert _sign_in(_browser_at(app), rp, victim).status_code == 429


def test_reservations_are_atomic_in_the_store(svc):
    """Forty threads reserve at once on the real store: counts 0..39, each seen once."""
    throttle = Throttle(svc.store)
    key = "race-" + random_ip()
    allowed: list[bool] = []
    barrier = threading.Barrier(40)

    def attempt() -> None:
        barrier.wait()
        a = throttle.begin(key, None, account_id="x")
        allowed.append(a.allowed)
        if a.allowed:
            a.failed()

    threads = [threading.Thread(target=attempt) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert allowed.count(True) == ACCOUNT_POLICY.free_failures
    n, last = svc.store.tally(f"thr:acct:{key}", 0, 60)
    assert n == ACCOUNT_POLICY.free_failures and last > 0


def test_a_refused_attempt_does_not_extend_the_delay(app, rp, make_student, svc, clock):
    # An attacker hammering a slowed account must not keep the child out: the delay runs
    # from the last *checked* failure, and refused attempts leave it alone.
    child = make_student()
    assert _guess(app, rp, child, ACCOUNT_POLICY.free_failures) == [401] * 5
    first = _sign_in(_browser_at(app), rp, child)
    wait = int(re.search(r"(\d+)秒", _alert(first)).group(1))
    for _ in range(5):
        clock[0] += wait / 10
        assert _guess(app, rp, child, 1) == [429]
    clock[0] += wait  # only the original delay after the last checked failure
    assert _sign_in(_browser_at(app), rp, child).status_code == 303


# ----------------------------------------------------------------------- 2. device cookies
def test_device_cookie_keeps_the_childs_own_browser_signing_in(app, rp, make_student):
    child = make_student()
    own = _browser_at(app)
    first = _sign_in(own, rp, child)
    assert first.status_code == 303
    cookie = [h for h in first.headers.getlist("Set-Cookie") if h.startswith(DEVICE_COOKIE)]
    flags = cookie[0].lower()
    assert "httponly" in flags and "samesite=lax" in flags and "secure" not in flags
    assert int(re.search(r"max-age=(\d+)", flags).group(1)) >= 90 * 24 * 3600
    assert child.login_id not in cookie[0]  # the cookie names the account by a digest only

    # Someone else uses up the account's allowance (and more) from another browser ...
    statuses = _guess(app, rp, child, 8)
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    assert _sign_in(_browser_at(app), rp, child).status_code == 429  # a strange browser
    # ... the child's own browser still signs in at once with the right password.
    fresh = Browser(own.c)
    fresh.c.delete_cookie("mynagate_session")
    assert _sign_in(fresh, rp, child).status_code == 303


def test_an_address_that_signed_in_before_keeps_its_allowance_without_a_cookie(
        app, rp, make_student):
    """A school PC that clears its cookies, or a new tablet at school: the school's address
    saw the child's right password before, so guesses sent from elsewhere (one each time the
    delay ends, for as long as they like) never keep the child out there. A stranger's
    address that never signed in is still slowed by the account's counter."""
    child = make_student()
    school = random_ip()
    assert _sign_in(_browser_at(app, school), rp, child).status_code == 303
    for _round in range(3):  # the attacker keeps the account's counter full
        statuses = _guess(app, rp, child, 7)
        assert statuses[-1] == 429
        assert _sign_in(_browser_at(app), rp, child).status_code == 429  # elsewhere: slowed
        # A new browser (no device cookie) at the school address: in at once.
        assert _sign_in(_browser_at(app, school), rp, child).status_code == 303


def test_a_known_address_is_not_a_way_round_the_counter_for_guessers_there(
        app, rp, make_student):
    """Someone guessing from the child's known address (a classmate behind the school's
    address) is slowed by that address's own allowance."""
    child = make_student()
    school = random_ip()
    assert _sign_in(_browser_at(app, school), rp, child).status_code == 303
    statuses = _guess(app, rp, child, 7, ip=school)
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}


def test_forged_or_other_account_device_cookie_gives_no_allowance(app, rp, make_student, svc):
    victim, classmate = make_student(), make_student()
    shared_pc = _browser_at(app)
    assert _sign_in(shared_pc, rp, classmate).status_code == 303  # the classmate's cookie
    classmates_cookie = shared_pc.c.get_cookie(DEVICE_COOKIE).value
    assert _guess(app, rp, victim, 6)[-1] == 429

    victims_key = f"{victim.school_code}:{victim.login_id.lower()}"
    forged = Throttle(svc.store, secret="not the provider's secret").device_cookie(
        None, victims_key)
    genuine = svc.throttle.device_cookie(None, victims_key)
    tampered = genuine[:-3] + ("AAA" if not genuine.endswith("AAA") else "BBB")
    for value in (classmates_cookie, forged, tampered, "x" * 4050, "%%%"):
        b = _browser_at(app)
        b.c.set_cookie(DEVICE_COOKIE, value)
        assert _sign_in(b, rp, victim).status_code == 429, value[:20]


def test_a_classmate_with_the_shared_pc_cookie_is_slowed_too(app, rp, make_student):
    # The shared PC holds the child's device cookie: a classmate guessing there gets that
    # device's own allowance, then the same capped delays, not unlimited tries.
    child = make_student()
    shared_pc = _browser_at(app)
    assert _sign_in(shared_pc, rp, child).status_code == 303
    shared_pc.c.delete_cookie("mynagate_session")
    page = _login_page(shared_pc, rp)
    statuses = [_post_login(shared_pc, page, child.school_code, child.login_id,
                            f"guess {i}").status_code for i in range(7)]
    assert statuses == [401] * 5 + [429] * 2
    # The child's other browsers were not slowed by the classmate's guesses.
    assert _sign_in(_browser_at(app), rp, child).status_code == 303


def test_device_cookie_secure_flag_over_https(settings_overrides):
    from idp.signin import device_cookie
    from tests.conftest import provider_app

    with provider_app({**settings_overrides, "issuer": "https://idp.example.test"},
                      migrate=False) as https:
        with https.test_request_context("/login"):
            from flask import make_response

            response = device_cookie.attach(make_response("ok"), "v")
        header = response.headers["Set-Cookie"].lower()
        assert "secure" in header and "httponly" in header and "samesite=lax" in header


# ----------------------------------------------------------------------- 3. one NAT address
def test_a_school_behind_one_address_still_signs_in(app, rp, make_student, svc,
                                                   monkeypatch):
    """110 failures from one address over many ids; then a child whose account has no
    failures of its own signs in at once from that address. Unknown ids are slowed."""
    # The throttle's clock stands still: on a loaded machine 110 requests take longer than
    # the first delays (2 s, 4 s ...), which would let a 401 through between them.
    frozen = time.time()
    monkeypatch.setattr(svc.throttle, "_clock", lambda: frozen)
    school_nat = random_ip()
    fresh = make_student()
    guesser = _browser_at(app, school_nat)
    page = _login_page(guesser, rp)
    statuses = [_post_login(guesser, page, fresh.school_code, f"nobody-{i}", "pw").status_code
                for i in range(110)]
    assert statuses[:IP_POLICY.free_failures] == [401] * IP_POLICY.free_failures
    assert set(statuses[IP_POLICY.free_failures:]) == {429}  # unknown-account guessing: slowed
    seconds = int(re.search(r"(\d+)秒", _alert(_post_login(
        guesser, page, fresh.school_code, "nobody-x", "pw"))).group(1))
    assert 1 <= seconds <= 300

    child = _browser_at(app, school_nat)
    assert _sign_in(child, rp, fresh).status_code == 303


def test_a_slowed_address_does_not_reveal_which_ids_exist(app, rp, make_student):
    school_nat = random_ip()
    real = make_student()
    guesser = _browser_at(app, school_nat)
    page = _login_page(guesser, rp)
    for i in range(IP_POLICY.free_failures):
        _post_login(guesser, page, real.school_code, f"nobody-{i}", "pw")
    unknown = _post_login(guesser, page, real.school_code, "nobody-else", "pw")
    wrong = _post_login(guesser, page, real.school_code, real.login_id, "wrong password")
    assert unknown.status_code == wrong.status_code == 429
    assert re.sub(r"\d+", "N", _alert(unknown)) == re.sub(r"\d+", "N", _alert(wrong))
    # That real account now has a failure of its own: from the slowed address it waits
    # (capped), while the child's other browsers are not slowed.
    assert _sign_in(_browser_at(app, school_nat), rp, real).status_code == 429
    assert _sign_in(_browser_at(app), rp, real).status_code == 303


# ----------------------------------------------------------------------- 5. sustained guessing
def _events(svc, account_id: str, event: str) -> list:
    from idp.store.models import AuditEvent

    with svc.db.session() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.account_id == account_id,
                                                        AuditEvent.event == event)))


def test_sustained_guessing_raises_one_event_and_a_flag_but_never_a_lockout(
        app, rp, make_student, svc, clock):
    child = make_student()
    own = _browser_at(app)
    assert _sign_in(own, rp, child).status_code == 303
    assert svc.throttle.guessing_flag(child.id) is None
    # Guesses from several places, many refused: well past the threshold.
    for _ in range(3):
        _guess(app, rp, child, GUESSING_FAILURES)
        clock[0] += 30
    events = _events(svc, child.id, "login.guessing")
    assert len(events) == 1  # once per window, not per guess
    assert events[0].outcome == "flagged" and events[0].details["attempts"] == GUESSING_FAILURES
    flag = svc.throttle.guessing_flag(child.id)
    assert flag["failures"] == GUESSING_FAILURES and flag["since"].endswith("Z")

    # The child: at once from their own browser, and within the capped delay anywhere.
    own.c.delete_cookie("mynagate_session")
    assert _sign_in(own, rp, child).status_code == 303
    clock[0] += ACCOUNT_POLICY.max_delay + 1
    assert _sign_in(_browser_at(app), rp, child).status_code == 303
    assert throttle_mod.delay_for(10**9, ACCOUNT_POLICY) == ACCOUNT_POLICY.max_delay
    assert throttle_mod.delay_for(10**9, IP_POLICY) <= 300
