"""Two provider processes behind one (imagined) load balancer, sharing PostgreSQL and Redis.

- a sign-in started on one instance finishes on the other, and a code issued by one is
  redeemed at the other;
- one refresh token sent to both at once is honoured once;
- Redis stopped: 503 with ``Retry-After`` (JSON for programs, a page for people), never a
  500, nothing half written; Redis back: service resumes with no provider restarted, and a
  code that reappears in Redis after it was spent is refused as a replay;
- PostgreSQL restarted (``pg_ctl restart -m fast``): at most the requests caught by the
  restart get 503, never 500, and the next ones succeed with no provider restarted.

The processes are started by :mod:`tests.multi_instance.conftest`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import redis
import requests
from sqlalchemy import create_engine, text

from tests.conftest import ROOT
from tests.multi_instance.conftest import (
    Deployment,
    Person,
    redeem,
    refresh,
    signed_in_tokens,
)
from tests.multi_instance.servers import Provider

pytestmark = [pytest.mark.multi_instance, pytest.mark.postgres]


def _count(d: Deployment, sql: str) -> int:
    engine = create_engine(d.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


FAMILIES = "SELECT count(*) FROM token_families"
ORPHAN_FAMILIES = ("SELECT count(*) FROM token_families f WHERE NOT EXISTS "
                   "(SELECT 1 FROM tokens t WHERE t.family_id = f.id)")


def _assert_unavailable(response: requests.Response, *, page: bool) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.headers.get("Retry-After", "").isdigit()
    if page:
        assert response.headers["Content-Type"].startswith("text/html")
        assert "こみあって" in response.text
    else:
        assert response.json()["error"] == "temporarily_unavailable"


def test_the_providers_run_this_checkout_and_a_uses_gunicorn(deployment: Deployment):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    where = subprocess.run([sys.executable, "-c", "import idp; print(idp.__file__)"],
                           env=env, cwd=str(ROOT), capture_output=True, text=True, check=True)
    assert where.stdout.strip() == str(ROOT / "idp" / "__init__.py")
    assert len(deployment.a.pids()) == 3  # the gunicorn arbiter and its two workers
    assert len(deployment.b.pids()) == 1


@pytest.mark.parametrize("order", ["a-then-b", "b-then-a"])
def test_a_sign_in_started_on_one_finishes_on_the_other(deployment: Deployment, order: str):
    d = deployment
    first, second = (d.a, d.b) if order == "a-then-b" else (d.b, d.a)
    person = Person()
    login, verifier = person.start(first, d.rp)
    # Every step of the sign-in (login page, password, consent, resumed /authorize) on the
    # other instance: the transaction, the session and the CSRF token live in Redis.
    code = person.sign_in(login, d.student, [second])
    # The code was issued by `second`; the RP redeems it at `first`.
    tokens = redeem(first, d.rp, code, verifier)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["id_token"] and body["refresh_token"]
    # Spent everywhere: the other instance refuses it too.
    again = redeem(second, d.rp, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    info = requests.get(second.base + "/userinfo", timeout=10,
                        headers={"Authorization": "Bearer " + body["access_token"]})
    assert info.status_code == 401  # the replay revoked what the code issued


def test_one_refresh_token_sent_to_both_at_once_succeeds_once(deployment: Deployment):
    d = deployment
    for _ in range(3):
        token = signed_in_tokens(d, d.a, d.b)["refresh_token"]
        barrier = threading.Barrier(2)
        results: list[requests.Response] = []

        def send(at: Provider, token: str = token, barrier: threading.Barrier = barrier):
            barrier.wait()
            results.append(refresh(at, d.rp, token))

        threads = [threading.Thread(target=send, args=(p,)) for p in d.providers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(r.status_code for r in results) == [200, 400], \
            [(r.status_code, r.text[:200]) for r in results]
        assert [r.json()["error"] for r in results if r.status_code == 400] == \
            ["invalid_grant"]


def test_redis_stopped_gives_503_and_service_resumes(deployment: Deployment):
    d = deployment
    pids = {p.port: p.pids() for p in d.providers}
    tokens = signed_in_tokens(d, d.b, d.a)
    # A code issued and redeemed before the outage, with its record kept aside: it plays a
    # Redis that comes back from a replica or snapshot older than the redemption.
    person = Person()
    login, verifier = person.start(d.a, d.rp)
    code = person.sign_in(login, d.student, [d.a])
    r = redis.Redis(port=d.redis.port)
    # (Spent codes stay until their TTL, marked spent: only the live one is kept aside.)
    saved = {key: (r.get(key), r.ttl(key)) for key in r.scan_iter("mynagate:code:*")
             if not r.get(key).startswith(b'{"__spent__"')}
    assert len(saved) == 1
    spent = redeem(d.b, d.rp, code, verifier)
    assert spent.status_code == 200
    # A code not yet redeemed, and a person halfway through a sign-in.
    waiting = Person()
    w_login, w_verifier = waiting.start(d.b, d.rp)
    w_code = waiting.sign_in(w_login, d.student, [d.b])
    halfway = Person()
    h_login, _ = halfway.start(d.a, d.rp)
    h_page = halfway.http.get(d.b.base + h_login, timeout=10)
    families = _count(d, FAMILIES)

    d.redis.stop()
    try:
        for p in d.providers:
            _assert_unavailable(Person().authorize(p, d.rp)[0], page=True)
            # A person with a session: their page cannot be read, so no form is processed
            # and no throttle is skipped: 503 before any view.
            _assert_unavailable(halfway.http.get(p.base + h_login, timeout=10), page=True)
            posted = halfway.http.post(p.base + "/login", timeout=10, allow_redirects=False,
                                       data={"csrf_token": "x", "school": d.student.school_code,
                                             "login_id": d.student.login_id,
                                             "password": d.student.password})
            _assert_unavailable(posted, page=True)
            _assert_unavailable(redeem(p, d.rp, w_code, w_verifier), page=False)
        assert h_page.status_code == 200
        # Nothing was written for the refused requests: no family, none without its tokens.
        assert _count(d, FAMILIES) == families
        assert _count(d, ORPHAN_FAMILIES) == 0
        # What needs only PostgreSQL keeps working.
        info = requests.get(d.a.base + "/userinfo", timeout=10,
                            headers={"Authorization": "Bearer " + tokens["access_token"]})
        assert info.status_code == 200
    finally:
        d.redis.start()

    # Service resumes with no provider restarted. (This Redis keeps nothing: the waiting
    # code and the sessions went with it, as a restart without persistence does.)
    for key, (value, ttl) in saved.items():
        r.set(key, value, ex=max(1, ttl))
    replay = redeem(d.a, d.rp, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant", replay.text
    # ... and, being a replay, it ended what the code had issued.
    assert refresh(d.b, d.rp, spent.json()["refresh_token"]).status_code == 400
    lost = redeem(d.b, d.rp, w_code, w_verifier)
    assert lost.status_code == 400 and lost.json()["error"] == "invalid_grant"
    signed_in_tokens(d, d.a, d.b)
    signed_in_tokens(d, d.b, d.a)
    assert _count(d, ORPHAN_FAMILIES) == 0
    assert {p.port: p.pids() for p in d.providers} == pids


def test_postgres_restart_is_survived_without_restarting_the_providers(deployment: Deployment):
    d = deployment
    pids = {p.port: p.pids() for p in d.providers}
    tokens = signed_in_tokens(d, d.a, d.b)
    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    # UserInfo reads a token's copy in Redis (idp.store.access_cache); without one it falls
    # back to PostgreSQL, which is what this load is for: drop the copy.
    access_hash = hashlib.sha256(tokens["access_token"].encode()).hexdigest()
    assert redis.Redis(port=d.redis.port).delete("mynagate:at:" + access_hash) == 1
    statuses: Counter[int] = Counter()
    stop = threading.Event()

    def load(p: Provider) -> None:
        # Requests that need PostgreSQL (the token lookup), sent while it restarts.
        while not stop.is_set():
            try:
                response = requests.get(p.base + "/userinfo", headers=bearer, timeout=15)
            except requests.RequestException:
                statuses[-1] += 1
                continue
            statuses[response.status_code] += 1
            if response.status_code == 503:
                assert response.headers.get("Retry-After")

    workers = [threading.Thread(target=load, args=(p,)) for p in d.providers for _ in range(2)]
    for t in workers:
        t.start()
    time.sleep(0.5)
    d.pg.restart()
    stop.set()
    for t in workers:
        t.join(30)
    assert set(statuses) <= {200, 503} and statuses[200], statuses

    # The first request after the restart may still meet a connection of the old server
    # (one per pool: its failure retires the rest of the pool); the next ones succeed.
    after: Counter[int] = Counter()
    for p in d.providers:
        for _ in range(3 * p.workers):
            after[requests.get(p.base + "/userinfo", headers=bearer, timeout=15).status_code] += 1
        for _ in range(4):
            response = requests.get(p.base + "/userinfo", headers=bearer, timeout=15)
            assert response.status_code == 200, (response.status_code, response.text[:300])
    assert set(after) <= {200, 503} and after[503] <= 3, after
    # A whole sign-in, code and refresh, across both instances.
    fresh = signed_in_tokens(d, d.b, d.a)
    assert refresh(d.a, d.rp, fresh["refresh_token"]).status_code == 200
    assert {p.port: p.pids() for p in d.providers} == pids
