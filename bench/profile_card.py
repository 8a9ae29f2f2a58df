"""Where one card sign-in's work goes, in one process: SQL statements and Redis calls per
step, the CPU time of each step, and a cProfile, for the harness's card workload
(authorize → card page with its first challenge → verify, whose answer carries the code
→ token) through the Flask test client, on PostgreSQL + Redis with the test PKI and a CRL
of 1000 entries, as ``bench/run.py`` has.

Run: .venv/bin/python bench/profile_card.py [--flows 200] [--batches 3] [--profile]
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import io
import os
import pstats
import re
import secrets
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from profile_flow import Counts, StepTimer  # noqa: E402

from idp.ops.heap import freeze_what_is_held  # noqa: E402
from tests.conftest import (  # noqa: E402 - the test helpers build the app as the tests do
    PG_ADMIN_URL,
    REDIS_URL,
    close_app,
    fresh_postgres_database,
    pkce_pair,
)

ISSUER = "http://127.0.0.1:5000"
REDIRECT_URI = "https://rp.profile/cb"
CRL_ENTRIES = 1000


def build(tmp: Path):
    from idp.jpki.testing.pki_dir import rewrite_crl, write_test_pki
    from tests.conftest import build_app

    stack = ExitStack()
    name = stack.enter_context(fresh_postgres_database("mynagate_profile_"))
    pki_dir = tmp / "pki"
    write_test_pki(pki_dir, n_cards=1)
    rewrite_crl(pki_dir, [secrets.randbits(62) | 1 << 62 for _ in range(CRL_ENTRIES)])
    app = build_app({
        "env": "test", "issuer": ISSUER, "secret_key": "profile-secret-key-0123456789",
        "pairwise_secret": "profile-pairwise-secret-0123456789", "keys_dir": str(tmp),
        "log_level": "WARNING", "redis_url": REDIS_URL,
        "database_url": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name,
        "jpki_trust_anchors": [str(pki_dir / "root.pem")], "jpki_revocation": "crl",
        "jpki_crl_sources": [str(pki_dir / "crl.der")]})
    stack.callback(close_app, app)
    return app, stack, pki_dir


def seed(app, pki_dir: Path):
    """One account with its card linked and the client agreed to: the flow ends in a code."""
    import datetime as dt

    from idp.clients.registry import ClientSpec, register_client
    from idp.jpki.testing.pki_dir import load_test_pki
    from idp.jpki.testing.testpki import issue_user_cert
    from idp.store.models import Account, CardBinding, Consent, School

    svc = app.extensions["mynagate"]
    row, secret = register_client(svc, ClientSpec(
        name="計測アプリ", redirect_uris=[REDIRECT_URI], post_logout_redirect_uris=[]),
        actor="profile")
    root = load_test_pki(pki_dir).root
    card = issue_user_cert(root, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    with svc.db.session() as s:
        school = School(code="prof", name="計測小学校")
        s.add(school)
        s.flush()
        account = Account(school_id=school.id, login_id="c1", display_name="計測 花子",
                          grade="5", class_name="1")
        s.add(account)
        s.flush()
        s.add(CardBinding(
            account_id=account.id, issuer=root.certificate.subject.rfc4514_string(),
            serial=card.serial, certificate_sha256=hashlib.sha256(card.der).hexdigest(),
            not_after=card.certificate.not_valid_after_utc.replace(tzinfo=None)))
        s.add(Consent(account_id=account.id, client_id=row.client_id, scopes=["openid"]))
    return row.client_id, secret, card


def sign(card, challenge: str) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    message = hashlib.sha256(ISSUER.encode()).digest() + hashlib.sha256(challenge.encode()).digest()
    return base64.b64encode(
        card.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def one_flow(app, client_id: str, secret: str, card, counts: Counts | None = None,
             timer: StepTimer | None = None) -> None:
    def step(label: str) -> None:
        if counts:
            counts.label = label
        if timer:
            timer.step(label)

    c = app.test_client()  # a fresh browser: its own cookies
    verifier, challenge = pkce_pair()
    step("authorize")
    r = c.get("/authorize", query_string={
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
        "scope": "openid", "state": "s", "code_challenge": challenge,
        "code_challenge_method": "S256"})
    assert r.status_code == 303, r.status_code
    txn = parse_qs(urlsplit(r.headers["Location"]).query)["txn"][0]
    step("card page")
    r = c.get(f"/login/card?txn={txn}")
    html = r.get_data(as_text=True)
    csrf = {"X-CSRFToken": re.search(r'data-csrf="([^"]+)"', html)[1]}
    # The page brings its first challenge, which the page's script uses on a first try.
    page_challenge = re.search(r'data-challenge="([^"]+)"', html)[1]
    token = {"format": "jpki-auth:1", "certificate": base64.b64encode(card.der).decode(),
             "algorithm": "RS256", "signature": sign(card, page_challenge),
             "bridge": "bench/1"}
    step("verify")
    r = c.post(f"/login/card/verify?txn={txn}", json=token, headers=csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    # The verify answer sends the browser straight back to the app with its code.
    location = r.get_json()["redirect"]
    assert location.startswith(REDIRECT_URI), location
    code = parse_qs(urlsplit(location).query)["code"][0]
    step("token")
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    r = c.post("/token", data={"grant_type": "authorization_code", "code": code,
                               "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
               headers={"Authorization": "Basic " + basic})
    assert r.status_code == 200, r.get_data(as_text=True)
    step("")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--statements", action="store_true", help="list each SQL statement")
    parser.add_argument("--profile", action="store_true", help="print a cProfile too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app, stack, pki_dir = build(Path(tmp))
        with stack:
            client_id, secret, card = seed(app, pki_dir)
            for _ in range(3):
                one_flow(app, client_id, secret, card)  # warm the caches
            freeze_what_is_held()  # as a serving process does (idp.ops.heap)
            counts = Counts(app)
            one_flow(app, client_id, secret, card, counts)
            print("per card sign-in: SQL statements and Redis commands")
            for label in ("authorize", "card page", "verify", "token"):
                print(f"  {label:10} sql={counts.sql[label]:3}  redis={counts.redis[label]:3}")
                if args.statements:
                    for statement in counts.statements.get(label, []):
                        print("      ", statement)
            best: dict[str, float] = {}
            for _ in range(args.batches):
                timer = StepTimer()
                for _ in range(args.flows):
                    one_flow(app, client_id, secret, card, timer=timer)
                for label, seconds in timer.cpu.items():
                    best[label] = min(best.get(label, float("inf")), seconds / args.flows * 1000)
            steps = "  ".join(f"{label} {ms:.3f}" for label, ms in best.items())
            print(f"fastest of {args.batches} batches, CPU ms per sign-in (test client and the "
                  f"card's signature included): {steps}  total {sum(best.values()):.3f}")
            if not args.profile:
                return
            profile = cProfile.Profile(time.process_time)
            profile.enable()
            for _ in range(args.flows):
                one_flow(app, client_id, secret, card)
            profile.disable()
            if os.environ.get("PROFILE_DUMP"):
                profile.dump_stats(os.environ["PROFILE_DUMP"])
            out = io.StringIO()
            order = os.environ.get("PROFILE_SORT", "cumulative")
            pstats.Stats(profile, stream=out).sort_stats(order).print_stats(args.top)
            print(out.getvalue())


if __name__ == "__main__":
    main()
