"""The benchmark harness (`make bench`): Mynagate under gunicorn on PostgreSQL + Redis beside
panva oidc-provider v9, each pinned to core 0, loaded from core 1.

Workloads (one operation each):
  sso       a signed-in browser's authorize -> token -> UserInfo (both providers; wrk)
  card      card sign-in: authorize -> card page -> verify -> token (Python,
            bench/card_load.py: the card's RSA signatures need real cryptography)
  refresh   refresh grant with rotation, one token chain per connection (wrk)
  password  GET /login (CSRF) -> POST credentials -> 303 (Argon2id-bound on purpose; wrk)

Usage: python bench/run.py [--seconds 10] [--rounds 3] [--only sso,card,refresh,password]
                           [--workers 1]
SSO and refresh at full rate run in interleaved rounds (Mynagate, the peer, the floor; then
the other way round), and each ratio to the peer is the median of the rounds' ratios: on a
shared machine the peer's own rate moved by 70% between two runs a minute apart.
The table goes to stdout and, as a new dated section, to bench/results.md. Any error under
load (an answer the workload did not expect) fails the run.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import platform
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import (  # noqa: E402
    BENCH,
    PEER,
    ROOT,
    BenchError,
    CpuMeter,
    LoadResult,
    Server,
)

WORKLOADS = ("sso", "card", "refresh", "password")
#: The SSO workload's third row: bench/floor_wsgi.py, what the Python stack alone costs.
FLOOR = "floor (Flask)"
REDIRECT_URI = "https://rp.bench.example/cb"
# Keycloak's published sizing: 120 refresh-token grants per second per vCPU
# (https://www.keycloak.org/high-availability/concepts-memory-and-cpu-sizing).
KEYCLOAK_REFRESH_PER_VCPU = 120.0
CRL_ENTRIES = 1000
PASSWORD = "bench password " + "x" * 8  # one Argon2id hash shared by every bench account


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic_auth(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def cookie_header(session: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def query_of(url: str) -> dict[str, str]:
    from urllib.parse import parse_qs

    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', html) or \
        re.search(rf'name="{name}" value="([^"]*)"', html)
    return match.group(1) if match else ""


# ----------------------------------------------------------------------------- the providers
@dataclass
class Provider:
    """A provider under load and what its setup made in it."""

    name: str
    server: Server
    client_id: str
    client_secret: str
    authorize_path: str
    token_path: str
    userinfo_path: str
    backend_meter: CpuMeter | None = None  # PostgreSQL + Redis (Mynagate only)
    browser: requests.Session | None = None  # signed in once, consent given
    extra: dict = field(default_factory=dict)

    @property
    def basic(self) -> str:
        return basic_auth(self.client_id, self.client_secret)

    def authorize_url(self, challenge: str, scope: str = "openid", **params: str) -> str:
        query = {"response_type": "code", "client_id": self.client_id,
                 "redirect_uri": REDIRECT_URI, "scope": scope, "state": "bench",
                 "code_challenge": challenge, "code_challenge_method": "S256", **params}
        return f"{self.authorize_path}?{urlencode(query)}"

    def redeem(self, code: str, verifier: str) -> dict:
        r = requests.post(self.server.base_url + self.token_path, headers={
            "Authorization": self.basic}, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}, timeout=30)
        if r.status_code != 200:
            raise BenchError(f"{self.name}: code redemption failed: {r.status_code} {r.text}")
        return r.json()

    def code_for(self, scope: str, **params: str) -> tuple[str, str]:
        """Walk an authorization (signing in and agreeing when asked) to the code."""
        assert self.browser is not None
        verifier, challenge = pkce_pair()
        url = self.server.base_url + self.authorize_url(challenge, scope, **params)
        walk = self.extra["walk"]
        return walk(self, url), verifier


def follow(browser: requests.Session, base: str, url: str,
           on_page: Callable[[str, requests.Response], requests.Response]) -> str:
    """Follow redirects until the RP's redirect URI (its code); ``on_page`` answers the
    provider's own pages (login, consent)."""
    response = browser.get(url, allow_redirects=False, timeout=30)
    for _ in range(20):
        if response.status_code in (301, 302, 303):
            location = response.headers["Location"]
            if location.startswith(REDIRECT_URI):
                query = query_of(location)
                if "code" not in query:
                    raise BenchError(f"authorization answered {location}")
                return query["code"]
            response = browser.get(urljoin(base, location), allow_redirects=False, timeout=30)
        elif response.status_code == 200:
            response = on_page(response.url, response)
        else:
            raise BenchError(f"authorization stopped at {response.status_code} "
                             f"{response.url}: {response.text[:500]}")
    raise BenchError("authorization did not end in 20 steps")


# ----------------------------------------------------------------------------- Mynagate
@dataclass
class MynagateSetup:
    values: dict  # the settings, shared by gunicorn (as IDP_*) and the in-process app
    app: object
    school_code: str
    student_login: str
    pki: object | None = None


def mynagate_settings(database_url: str, port: int, tmp: Path, pki_dir: Path,
                      workers: int) -> dict:
    return {
        "env": "test",
        "issuer": f"http://127.0.0.1:{port}",
        "database_url": database_url,
        "redis_url": harness.REDIS_URL,
        "secret_key": secrets.token_urlsafe(32),
        "pairwise_secret": secrets.token_urlsafe(32),
        "keys_dir": str(tmp / "keys"),
        "workers": workers,
        "log_level": "WARNING",
        # The test PKI of this run, checked against its CRL, as in production's "crl" mode.
        "jpki_trust_anchors": [str(pki_dir / "root.pem")],
        "jpki_revocation": "crl",
        "jpki_crl_sources": [str(pki_dir / "crl.der")],
    }


def as_environ(values: dict) -> dict[str, str]:
    return {f"IDP_{k.upper()}": ",".join(v) if isinstance(v, list) else str(v)
            for k, v in values.items()}


def start_mynagate(database_url: str, prefix: str, tmp: Path, args) -> Provider:
    from idp.app import create_app
    from idp.clients.registry import ClientSpec, register_client
    from idp.jpki.testing.pki_dir import load_test_pki, rewrite_crl, write_test_pki
    from idp.settings import Settings
    from idp.signin.passwords import hash_password
    from idp.store.migrate import upgrade_database
    from idp.store.models import Account, School

    pki_dir = tmp / "pki"
    write_test_pki(pki_dir, n_cards=1)
    # A CRL with entries in it, so the revocation lookup a card sign-in does has a list to
    # search (a deployment's CRL has many); none of the bench's cards is on it.
    rewrite_crl(pki_dir, [secrets.randbits(62) | 1 << 62 for _ in range(CRL_ENTRIES)])
    port = harness.free_port()
    values = mynagate_settings(database_url, port, tmp, pki_dir, args.workers)
    upgrade_database(database_url)
    # The in-process app does the setup (accounts, client, keys) on the same database; it
    # serves no requests.
    app = create_app(Settings.load(values, environ={}))
    svc = app.extensions["mynagate"]
    svc.store._p = prefix
    svc.keys.refresh()  # creates the signing keys before any worker races to
    with svc.db.session() as s:
        school = School(code="bench-school", name="ベンチ小学校")
        s.add(school)
        s.flush()
        s.add(Account(school_id=school.id, login_id="bench-sso", display_name="ベンチ 太郎",
                      password_hash=hash_password(PASSWORD), grade="5", class_name="1"))
    row, secret = register_client(svc, ClientSpec(
        name="bench", redirect_uris=[REDIRECT_URI], post_logout_redirect_uris=[]),
        actor="bench")
    env = harness.python_env({**as_environ(values), "BENCH_REDIS_PREFIX": prefix})
    server = harness.start_server(
        "mynagate", harness.gunicorn_cmd(port, args.workers, args.threads, args.worker_class), env,
        f"http://127.0.0.1:{port}", "/.well-known/openid-configuration", BENCH, tmp)
    provider = Provider(
        "Mynagate", server, row.client_id, secret or "", "/authorize", "/token", "/userinfo",
        backend_meter=CpuMeter(lambda: harness.database_backends(database_url)
                               + harness.redis_pids()))
    provider.extra.update(walk=walk_mynagate, setup=MynagateSetup(
        values, app, "bench-school", "bench-sso", load_test_pki(pki_dir)), svc=svc)
    provider.browser = requests.Session()
    return provider


def walk_mynagate(provider: Provider, url: str) -> str:
    base = provider.server.base_url
    setup: MynagateSetup = provider.extra["setup"]
    browser = provider.browser
    assert browser is not None

    def on_page(page_url: str, page: requests.Response) -> requests.Response:
        path = urlsplit(page_url).path
        html = page.text
        if path == "/login":
            return browser.post(base + "/login", data={
                "csrf_token": hidden(html, "csrf_token"), "school": setup.school_code,
                "login_id": setup.student_login, "password": PASSWORD,
                "txn": hidden(html, "txn"), "card": hidden(html, "card")},
                allow_redirects=False, timeout=30)
        if path == "/consent":
            return browser.post(base + "/consent", data={
                "csrf_token": hidden(html, "csrf_token"), "txn": hidden(html, "txn"),
                "allow": "1"}, allow_redirects=False, timeout=30)
        raise BenchError(f"Mynagate: unexpected page {page_url}: {html[:300]}")

    return follow(browser, base, url, on_page)


# ----------------------------------------------------------------------------- oidc-provider
def start_peer(tmp: Path) -> Provider:
    port = harness.free_port()
    client_id, secret = "bench", secrets.token_hex(24)  # hex: no form-encoding questions
    env = {**os.environ, "PEER_PORT": str(port), "PEER_CLIENT_ID": client_id,
           "PEER_CLIENT_SECRET": secret, "PEER_REDIRECT_URI": REDIRECT_URI,
           "NODE_ENV": "production"}
    server = harness.start_server(
        "oidc-provider", [*harness.taskset(harness.SERVER_CPU), "node", "server.mjs"], env,
        f"http://127.0.0.1:{port}", "/.well-known/openid-configuration", PEER, tmp)
    provider = Provider("oidc-provider", server, client_id, secret, "/auth", "/token", "/me")
    provider.extra.update(walk=walk_peer)
    provider.browser = requests.Session()
    return provider


def start_floor(tmp: Path, args) -> Provider:
    """bench/floor_wsgi.py under the same gunicorn as Mynagate (see its docstring)."""
    port = harness.free_port()
    server = harness.start_server(
        "floor", harness.gunicorn_cmd(port, args.workers, args.threads, args.worker_class,
                                      app="floor_wsgi:app"),
        harness.python_env({}), f"http://127.0.0.1:{port}",
        "/.well-known/openid-configuration", BENCH, tmp)
    provider = Provider(FLOOR, server, "bench", "floor", "/authorize", "/token", "/userinfo")
    provider.extra.update(walk=walk_floor)
    provider.browser = requests.Session()
    return provider


def walk_floor(provider: Provider, url: str) -> str:
    assert provider.browser is not None
    answer = provider.browser.get(url, allow_redirects=False, timeout=30)
    return query_of(answer.headers["Location"])["code"]


def walk_peer(provider: Provider, url: str) -> str:
    base = provider.server.base_url
    browser = provider.browser
    assert browser is not None

    def on_page(page_url: str, page: requests.Response) -> requests.Response:
        # The dev interactions: a login form (any login id) and a consent form.
        html = page.text
        action = re.search(r'<form[^>]*action="([^"]+)"', html)
        prompt = re.search(r'name="prompt" value="([^"]+)"', html)
        if not action or not prompt:
            raise BenchError(f"oidc-provider: unexpected page {page_url}: {html[:300]}")
        data = {"prompt": prompt.group(1)}
        if prompt.group(1) == "login":
            data.update(login="bench-sso", password="x")
        return browser.post(urljoin(base, action.group(1)), data=data, allow_redirects=False,
                            timeout=30)

    return follow(browser, base, url, on_page)


# ----------------------------------------------------------------------------- workloads
@dataclass
class Row:
    workload: str
    provider: str
    result: LoadResult | None
    note: str = ""
    ratio: str = ""
    rss_mb: list[float] = field(default_factory=list)
    #: Each round's rate, for the JSON (see in_rounds).
    round_rates: list[float] = field(default_factory=list)


def meters(provider: Provider) -> tuple[CpuMeter, CpuMeter]:
    return (CpuMeter(provider.server.tree),
            provider.backend_meter or CpuMeter(lambda: []))


def sso_env(provider: Provider) -> dict[str, str]:
    """Sign in once (consent included) and hand the session to wrk."""
    verifier, challenge = pkce_pair()
    code, first_verifier = provider.code_for("openid")
    provider.redeem(code, first_verifier)  # the same flow once, outside the measurement
    assert provider.browser is not None
    return {"BENCH_COOKIE": cookie_header(provider.browser),
            "BENCH_AUTHORIZE": provider.authorize_url(challenge),
            "BENCH_TOKEN_PATH": provider.token_path,
            "BENCH_USERINFO_PATH": provider.userinfo_path,
            "BENCH_BASIC": provider.basic, "BENCH_REDIRECT_URI": REDIRECT_URI,
            "BENCH_VERIFIER": verifier}


def warm_up(provider: Provider, script: str, env: dict[str, str], args) -> None:
    """An unmeasured run first (``--warmup`` seconds): connection pools, caches, the JIT
    of node."""
    if args.warmup:
        harness.run_wrk(script, provider.server.base_url, env, seconds=args.warmup,
                        connections=args.connections)


def load(provider: Provider, script: str, env: dict[str, str], args,
         seconds: float | None = None) -> LoadResult:
    warm_up(provider, script, env, args)
    return harness.run_wrk(script, provider.server.base_url, env,
                           seconds=seconds or args.seconds, connections=args.connections,
                           meters=meters(provider))


def in_rounds(providers: list[Provider], args,
              run_slice: Callable[[Provider, int], LoadResult]) -> dict[str, list[LoadResult]]:
    """Each provider's full-rate runs, interleaved: ``args.rounds`` rounds, each running
    every provider once for its share of ``args.seconds``, in an order reversed every other
    round (A B C, C B A, ...), so that a machine slowing or speeding up over the minute
    weighs on every provider alike. ``run_slice(provider, round)`` runs one of them."""
    runs: dict[str, list[LoadResult]] = {p.name: [] for p in providers}
    for number in range(args.rounds):
        for provider in providers if number % 2 == 0 else providers[::-1]:
            result = run_slice(provider, number)
            if result.seconds <= 0:
                raise BenchError(f"{provider.name}: a {slice_seconds(args)} s run "
                                 "measured nothing")
            runs[provider.name].append(result)
    return runs


def merged_row(workload: str, provider: Provider, runs: dict[str, list[LoadResult]]) -> Row:
    """The table's row of a provider's rounds: their sum, and each round's rate apart."""
    return Row(workload, provider.name, LoadResult.merged(runs[provider.name]),
               round_rates=[r.rate for r in runs[provider.name]])


def slice_seconds(args) -> int:
    """One round's run, in whole seconds (wrk's -d)."""
    return max(1, round(args.seconds / args.rounds))


def workload_sso(providers: list[Provider], args) -> list[Row]:
    envs = {p.name: sso_env(p) for p in providers}
    for provider in providers:
        warm_up(provider, "sso.lua", envs[provider.name], args)
    runs = in_rounds(providers, args, lambda provider, _number: harness.run_wrk(
        "sso.lua", provider.server.base_url, envs[provider.name], seconds=slice_seconds(args),
        connections=args.connections, meters=meters(provider)))
    rows = []
    for provider in providers:
        row = merged_row("sso", provider, runs)
        row.rss_mb = [harness.rss_mb(p) for p in provider.server.workers()]
        rows.append(row)
        result = row.result
        if result.ops:
            # p99 at half the measured max rate: each connection paced by delay() in Lua.
            interval = args.connections / (result.rate / 2) * 1000
            half = harness.run_wrk("sso.lua", provider.server.base_url,
                                   {**envs[provider.name],
                                    "BENCH_OP_INTERVAL_MS": f"{interval:.3f}"},
                                   seconds=args.seconds, connections=args.connections,
                                   meters=meters(provider))
            rows.append(Row("sso @ ½ max", provider.name, half,
                            note=f"paced to {result.rate / 2:.0f} ops/s"))
    peer = runs.get("oidc-provider")
    by_name = {r.provider: r for r in rows if r.workload == "sso"}
    for name in ("Mynagate", FLOOR):
        row = by_name.get(name)
        if row and peer and name in runs:
            row.ratio = harness.describe_ratio(harness.round_ratios(runs[name], peer),
                                               "oidc-provider")
    floor = by_name.get(FLOOR)
    if floor:
        floor.note = "bare Flask + RS256 under the same gunicorn: the stack's ceiling"
    return rows


def refresh_chains(provider: Provider, n: int) -> list[str]:
    """``n`` refresh tokens, each the start of its own chain (its own authorization)."""
    # oidc-provider grants offline_access only when consent is asked for in the request.
    params = {"prompt": "consent"} if provider.name == "oidc-provider" else {}
    tokens = []
    for _ in range(n):
        code, verifier = provider.code_for("openid offline_access", **params)
        body = provider.redeem(code, verifier)
        if "refresh_token" not in body:
            raise BenchError(f"{provider.name}: no refresh token issued: {body}")
        tokens.append(body["refresh_token"])
    return tokens


def workload_refresh(mine: Provider, peer: Provider | None, args) -> list[Row]:
    providers = [mine] + ([peer] if peer else [])
    # A set of chains for each run: the last request of a run may have rotated a token
    # whose answer wrk never read; reusing that chain would (rightly) be refused.
    envs = {p.name: {"BENCH_TOKEN_PATH": p.token_path, "BENCH_BASIC": p.basic}
            for p in providers}

    def chains(provider: Provider, name: str) -> str:
        path = Path(provider.server.log_path.parent) / f"refresh-{provider.name}-{name}"
        path.write_text("\n".join(refresh_chains(provider, args.connections)) + "\n")
        return str(path)

    if args.warmup:  # (its chains are made only when it runs)
        for provider in providers:
            warm_up(provider, "refresh.lua",
                    {**envs[provider.name], "BENCH_TOKENS_FILE": chains(provider, "warm")},
                    args)
    # Each round's chains are made just before its run, not all at first: oidc-provider's
    # in-memory adapter keeps its most recent 1,000 entries, and a run's rotations would
    # push a later round's tokens out.
    runs = in_rounds(providers, args, lambda provider, number: harness.run_wrk(
        "refresh.lua", provider.server.base_url,
        {**envs[provider.name], "BENCH_TOKENS_FILE": chains(provider, f"round-{number}")},
        seconds=slice_seconds(args), connections=args.connections, meters=meters(provider)))
    rows = []
    for provider in providers:
        row = merged_row("refresh", provider, runs)
        # Keycloak's figure is per vCPU; each provider here has one core.
        row.ratio = f"{row.result.rate / KEYCLOAK_REFRESH_PER_VCPU:.2f}× Keycloak sizing"
        if provider is mine and peer:
            row.ratio += "; " + harness.describe_ratio(
                harness.round_ratios(runs[mine.name], runs[peer.name]), "oidc-provider")
        rows.append(row)
    return rows


def workload_card(mine: Provider, peer: Provider | None, args) -> list[Row]:
    cards = mine.server.log_path.parent / "cards.json"
    cards.write_text(json.dumps(make_cards(mine, max(32, 8 * args.connections))))
    # Warm-up, then the measured run (the same cards: a card signs in as often as it likes).
    if args.warmup:
        run_card_load(mine, cards, args.warmup, args.connections, measure=False)
    result = run_card_load(mine, cards, args.seconds, args.connections, measure=True)
    return [Row("card", "Mynagate", result, note=f"test PKI, CRL of {CRL_ENTRIES} entries"),
            Row("card", "oidc-provider", None, note="n/a (no card sign-in)")]


def make_cards(mine: Provider, n: int) -> dict:
    """``n`` card certificates under the run's test root, each linked to its own account
    that has already agreed to the bench client (so the flow ends in a code, no page)."""
    import datetime as dt_

    from sqlalchemy import select

    from idp.jpki.testing.testpki import generate_rsa_key, issue_user_cert, pem_private_key
    from idp.store.models import Account, CardBinding, Consent, School

    svc = mine.extra["svc"]
    setup: MynagateSetup = mine.extra["setup"]
    root = setup.pki.root
    # Key generation is the slow part; the certificates (each unique) share a few keys.
    keys = [generate_rsa_key(2048) for _ in range(4)]
    issuer = root.certificate.subject.rfc4514_string()
    now = dt_.datetime.now(dt_.UTC)
    out = []
    with svc.db.session() as s:
        school = s.scalar(select(School).where(School.code == setup.school_code))
        for i in range(n):
            card = issue_user_cert(root, key=keys[i % len(keys)],
                                   not_before=now - dt_.timedelta(days=1))
            account = Account(school_id=school.id, login_id=f"bench-card-{i:03d}",
                              display_name="ベンチ カード", grade="5", class_name="1")
            s.add(account)
            s.flush()
            s.add(CardBinding(
                account_id=account.id, issuer=issuer, serial=card.serial,
                certificate_sha256=hashlib.sha256(card.der).hexdigest(),
                not_after=card.certificate.not_valid_after_utc.replace(tzinfo=None)))
            s.add(Consent(account_id=account.id, client_id=mine.client_id, scopes=["openid"]))
            out.append({"certificate": base64.b64encode(card.der).decode(),
                        "key": pem_private_key(card.private_key).decode()})
    return {"client_id": mine.client_id, "client_secret": mine.client_secret,
            "redirect_uri": REDIRECT_URI, "origin": mine.server.base_url, "cards": out}


def run_card_load(mine: Provider, cards: Path, seconds: float, connections: int, *,
                  measure: bool) -> LoadResult:
    out = cards.parent / "card-result.json"
    cmd = [*harness.taskset(harness.LOAD_CPU), sys.executable, str(BENCH / "card_load.py"),
           mine.server.base_url, "--cards", str(cards), "--seconds", str(seconds),
           "--connections", str(connections), "--out", str(out)]
    pair = meters(mine)
    if measure:
        for meter in pair:
            meter.start()
    proc = subprocess.run(cmd, env=harness.python_env({}), capture_output=True, text=True)
    spent = [meter.spent_ms() for meter in pair] if measure else [0.0, 0.0]
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise BenchError(f"card_load.py failed ({proc.returncode}): {proc.stderr[-2000:]}")
    data = json.loads(out.read_text())
    return LoadResult(data["ops"], data["duration_us"] / 1e6, data["latencies_ms"],
                      data["errors"], spent[0], spent[1])


def workload_password(mine: Provider, peer: Provider | None, args) -> list[Row]:
    from sqlalchemy import select

    from idp.signin.passwords import hash_password
    from idp.store.models import Account, School

    svc = mine.extra["svc"]
    setup: MynagateSetup = mine.extra["setup"]
    # Many accounts, one Argon2id hash (its salt shared; it is only a bench): the per-account
    # throttle counts failures only and gives a success's reservation back, and no account is
    # signed in to twice at once, so no success is ever slowed.
    shared_hash = hash_password(PASSWORD)
    logins = [f"bench-pw-{i:03d}" for i in range(max(64, 4 * args.connections))]
    with svc.db.session() as s:
        school = s.scalar(select(School).where(School.code == setup.school_code))
        s.add_all(Account(school_id=school.id, login_id=login, display_name="ベンチ",
                          password_hash=shared_hash) for login in logins)
    accounts = mine.server.log_path.parent / "password-accounts"
    accounts.write_text("\n".join(logins) + "\n")
    env = {"BENCH_ACCOUNTS_FILE": str(accounts), "BENCH_SCHOOL": setup.school_code,
           "BENCH_PASSWORD": PASSWORD}
    result = load(mine, "password.lua", env, args)
    return [Row("password", "Mynagate", result, note=argon2_parameters()),
            Row("password", "oidc-provider", None, note="n/a (dev interactions only)")]


def argon2_parameters() -> str:
    """The hasher's parameters as Mynagate uses them (read, not restated)."""
    from idp.signin.passwords import _hasher

    return (f"Argon2id t={_hasher.time_cost} m={_hasher.memory_cost // 1024} MiB "
            f"p={_hasher.parallelism}, bound on purpose")


# ----------------------------------------------------------------------------- report
def fmt(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN: nothing measured


def table(rows: list[Row]) -> str:
    head = ("| workload | provider | ops/s | p50 ms | p99 ms | errors | CPU ms/op "
            "(provider) | CPU ms/op (PG+Redis) | ratio | worker RSS MB |")
    lines = [head, "|" + "---|" * 10]
    for row in rows:
        r = row.result
        rss = ", ".join(f"{m:.0f}" for m in row.rss_mb)
        if r is None:
            lines.append(f"| {row.workload} | {row.provider} | n/a | | | | | | "
                         f"{row.note} | |")
            continue
        backend = fmt(r.backend_per_op, 2) if row.provider == "Mynagate" else "-"
        ratio = "; ".join(x for x in (row.ratio, row.note) if x)
        lines.append(f"| {row.workload} | {row.provider} | {fmt(r.rate)} | "
                     f"{fmt(r.percentile(50))} | {fmt(r.percentile(99))} | "
                     f"{r.error_count} | {fmt(r.cpu_per_op, 2)} | {backend} | {ratio} | "
                     f"{rss} |")
    return "\n".join(lines)


def machine(args) -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break

    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "n/a"

    commit = out(["git", "rev-parse", "--short", "HEAD"])
    if out(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += " (with uncommitted changes)"
    info = {"date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "commit": commit, "cpu": cpu, "cores": str(os.cpu_count()),
            "kernel": platform.release(), "python": platform.python_version(),
            "node": out(["node", "--version"]) or "n/a"}
    try:
        from sqlalchemy import text

        with harness._admin_engine().connect() as conn:
            info["postgresql"] = conn.execute(text("SHOW server_version")).scalar_one()
        import redis

        info["redis"] = redis.Redis.from_url(harness.REDIS_URL).info("server")["redis_version"]
    except Exception:  # noqa: BLE001 - versions are informative only
        pass
    info["setup"] = (f"gunicorn {args.workers} worker(s) × {args.threads} threads "
                     f"({args.worker_class}) "
                     f"on core {harness.SERVER_CPU}, oidc-provider on core "
                     f"{harness.SERVER_CPU}, load on core {harness.LOAD_CPU}, "
                     f"{args.connections} connections, {args.seconds:g} s per run "
                     f"(SSO and refresh at full rate: {args.rounds} interleaved rounds of "
                     f"{slice_seconds(args)} s per provider)")
    return info


RESULTS_HEADER = """# Benchmark results

Written by `make bench` (bench/run.py). Each run appends a dated section under *History*;
the table just below is edited by hand: one line per change that moved the numbers.

## What each change bought

| change (commit) | SSO ops/s before → after | ratio to oidc-provider | notes |
|---|---|---|---|
| harness first run | — | — | baseline |

## History
"""


def write_results(path: Path, info: dict[str, str], text: str) -> None:
    if not path.exists():
        path.write_text(RESULTS_HEADER, encoding="utf-8")
    lines = [f"\n### {info['date']} — {info['commit']}\n"]
    lines += [f"- {k}: {v}" for k, v in info.items() if k not in ("date", "commit")]
    lines += ["", text, ""]
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines))


# ----------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per load run")
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help="comma-separated: " + ",".join(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=3,
                        help="the full-rate SSO and refresh runs, interleaved between the "
                             "providers in this many rounds (the ratio is their median)")
    # 3 s, not 1: after 1 s oidc-provider's first measured round still ran at 50-70% of
    # its later ones (node's JIT settling); Mynagate's rounds showed no such rise.
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="unmeasured seconds before each workload (0: none)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--worker-class", default="gthread",
                        help="gunicorn worker class: gthread, sync (gevent needs its package)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--no-peer", action="store_true", help="Mynagate only")
    parser.add_argument("--results", default=str(BENCH / "results.md"),
                        help="append the run here ('' : do not write)")
    parser.add_argument("--json", default="", help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    unknown = set(args.only) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    return args


def rows_json(rows: list[Row]) -> list[dict]:
    out = []
    for row in rows:
        r = row.result
        out.append({"workload": row.workload, "provider": row.provider, "note": row.note,
                    "ratio": row.ratio, "rss_mb": row.rss_mb,
                    "round_rates": row.round_rates} | ({} if r is None else {
                        "ops": r.ops, "rate": r.rate, "p50_ms": r.percentile(50),
                        "p99_ms": r.percentile(99), "errors": r.errors,
                        "cpu_ms_per_op": r.cpu_per_op,
                        "backend_cpu_ms_per_op": r.backend_per_op}))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.ensure_wrk()
    with_peer = not args.no_peer and harness.ensure_peer()
    rows: list[Row] = []
    servers: list[Server] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mynagate-bench-") as tmp_name, \
            harness.fresh_database() as database_url, harness.redis_prefix() as prefix:
        tmp = Path(tmp_name)
        try:
            mine = start_mynagate(database_url, prefix, tmp, args)
            servers.append(mine.server)
            peer = None
            if with_peer:
                peer = start_peer(tmp)
                servers.append(peer.server)
            providers = [mine] + ([peer] if peer else [])
            if "sso" in args.only:
                floor = start_floor(tmp, args)
                servers.append(floor.server)
                rows += workload_sso([*providers, floor], args)
            for name in ("card", "refresh", "password"):
                if name in args.only:
                    rows += WORKLOAD_FUNCS[name](mine, peer, args)
        finally:
            for server in servers:
                server.stop()
            svc = None
            if servers:
                svc = mine.extra.get("svc")
            if svc is not None:
                if svc.card.refresher is not None:
                    svc.card.refresher.stop()
                svc.db.dispose()
            if harness._ADMIN is not None:
                harness._ADMIN.dispose()
    text = table(rows)
    print()
    print(text)
    info = machine(args)
    print(f"\n({time.monotonic() - started:.0f} s; {info['cpu']}, {info['cores']} cores, "
          f"commit {info['commit']})")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows_json(rows)},
                                              indent=2, default=str))
    failed = [r for r in rows if r.result is not None and r.result.error_count]
    if failed:
        for r in failed:
            print(f"ERROR: {r.workload} on {r.provider}: {r.result.errors}", file=sys.stderr)
        print("bench FAILED: errors under load (numbers not written to results)",
              file=sys.stderr)
        return 1
    if args.results:
        write_results(Path(args.results), info, text)
        print(f"appended to {args.results}")
    return 0


WORKLOAD_FUNCS: dict[str, Callable[[Provider, Provider | None, argparse.Namespace],
                                   list[Row]]] = {
    "card": workload_card,
    "refresh": workload_refresh,
    "password": workload_password,
}

if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
