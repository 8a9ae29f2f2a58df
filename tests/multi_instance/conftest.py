"""Two ``idp serve`` processes (A: gunicorn with two workers, B: the threaded server) on
their own PostgreSQL cluster and Redis server, plus the HTTP helpers that drive them the way
a browser behind a load balancer and a relying party would."""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from tests.conftest import BACKEND, ROOT, RP, Student, csrf_of, pkce_pair, query_of
from tests.multi_instance.servers import PostgresCluster, Provider, RedisServer

OFFLINE = "openid offline_access"


@pytest.fixture(autouse=True)
def _postgres_pass_only():
    # The suite's second pass (MYNAGATE_TEST_BACKEND=postgres) runs these, once: they bring
    # their own PostgreSQL and Redis, so the SQLite pass has nothing to add.
    if BACKEND != "postgres":
        pytest.skip("runs in the PostgreSQL + Redis pass (MYNAGATE_TEST_BACKEND=postgres)")


@dataclass
class Deployment:
    a: Provider
    b: Provider
    pg: PostgresCluster
    redis: RedisServer
    database_url: str
    student: Student
    rp: RP

    @property
    def providers(self) -> list[Provider]:
        return [self.a, self.b]


def _seed(env: dict[str, str]) -> tuple[Student, RP]:
    from idp.app import create_app
    from idp.clients.registry import ClientSpec, register_client
    from idp.settings import Settings
    from idp.signin.passwords import hash_password
    from idp.store.migrate import upgrade_database
    from idp.store.models import Account, School

    settings = Settings.load(environ=env)
    upgrade_database(settings.database_url)
    app = create_app(settings)
    svc = app.extensions["mynagate"]
    try:
        svc.keys.refresh()  # the signing keys exist before two processes start at once
        with svc.db.session() as s:
            school = School(code="mi-school", name="二台構成テスト校")
            s.add(school)
            s.flush()
            account = Account(school_id=school.id, login_id="hanako", display_name="花子",
                              password_hash=hash_password("two instances pw"))
            s.add(account)
        row, secret = register_client(svc, ClientSpec(
            name="multi rp", redirect_uris=["https://rp.multi.test/cb"],
            post_logout_redirect_uris=[]), actor="test")
    finally:
        svc.db.dispose()
    return (Student(account.id, school.code, "hanako", "two instances pw"),
            RP(row.client_id, secret, "https://rp.multi.test/cb", row.sector,
               "client_secret_basic"))


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    if BACKEND != "postgres":
        pytest.skip("runs in the PostgreSQL + Redis pass")
    state = Path(tempfile.mkdtemp(prefix="mynagate-multi-"))
    pg = PostgresCluster()
    redis_server = RedisServer()
    providers: list[Provider] = []
    try:
        database_url = pg.url()
        env = {"IDP_ENV": "test", "IDP_ISSUER": "http://127.0.0.1:5000",
               "IDP_SECRET_KEY": "multi-secret-key-0123456789",
               "IDP_PAIRWISE_SECRET": "multi-pairwise-secret-0123456789",
               "IDP_KEYS_DIR": str(state / "keys"), "IDP_DATABASE_URL": database_url,
               "IDP_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0",
               "IDP_JPKI_REVOCATION": "none", "IDP_JPKI_TRUST_ANCHORS": "",
               "IDP_LOG_LEVEL": "WARNING"}
        student, rp = _seed(env)
        providers.append(Provider(env, 2, state / "a.log"))  # gunicorn, two workers
        providers.append(Provider(env, 1, state / "b.log"))  # the threaded server
        yield Deployment(providers[0], providers[1], pg, redis_server, database_url,
                         student, rp)
    finally:
        artifacts = ROOT / "test-artifacts" / "multi_instance"
        artifacts.mkdir(parents=True, exist_ok=True)
        for provider in providers:
            provider.stop()
            # The providers' own logs, for whoever reads a failure.
            shutil.copy(provider.log, artifacts / provider.log.name)
        redis_server.close()
        pg.stop()
        shutil.rmtree(state, ignore_errors=True)


# ----------------------------------------------------------------------------- HTTP
def _follow(response: requests.Response) -> str:
    assert response.status_code in (302, 303), (response.status_code, response.text[:500])
    return response.headers["Location"]


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', html)
    return match.group(1) if match else ""


class Person:
    """One browser (one cookie jar) whose requests a load balancer sends to either
    instance: every step names the instance it goes to."""

    def __init__(self) -> None:
        self.http = requests.Session()

    def authorize(self, at: Provider, rp: RP,
                  scope: str = OFFLINE) -> tuple[requests.Response, str]:
        """GET /authorize at ``at``: the answer and the PKCE verifier."""
        verifier, challenge = pkce_pair()
        query = {"response_type": "code", "client_id": rp.client_id,
                 "redirect_uri": rp.redirect_uri, "scope": scope, "state": "s1",
                 "code_challenge": challenge, "code_challenge_method": "S256"}
        response = self.http.get(f"{at.base}/authorize?{urlencode(query)}",
                                 allow_redirects=False, timeout=10)
        return response, verifier

    def start(self, at: Provider, rp: RP, scope: str = OFFLINE) -> tuple[str, str]:
        """GET /authorize at ``at``: the login page's URL (relative) and the PKCE verifier."""
        response, verifier = self.authorize(at, rp, scope)
        location = _follow(response)
        assert location.startswith("/login"), location
        return location, verifier

    def sign_in(self, login_url: str, student: Student, steps: list[Provider]) -> str:
        """From the login page to the redirect back at the RP; the n-th request goes to
        ``steps[n % len(steps)]``. Returns the code."""
        turn = iter(range(100))

        def at() -> Provider:
            return steps[next(turn) % len(steps)]

        page = self.http.get(at().base + login_url, timeout=10)
        assert page.status_code == 200, page.text[:500]
        response = self.http.post(at().base + "/login", allow_redirects=False, timeout=10,
                                  data={"csrf_token": csrf_of(page.text),
                                        "school": student.school_code,
                                        "login_id": student.login_id,
                                        "password": student.password,
                                        "txn": _hidden(page.text, "txn"),
                                        "card": _hidden(page.text, "card")})
        location = _follow(response)
        while location.startswith("/"):
            if location.startswith("/consent"):
                page = self.http.get(at().base + location, timeout=10)
                response = self.http.post(at().base + "/consent", allow_redirects=False,
                                          timeout=10, data={
                                              "csrf_token": csrf_of(page.text),
                                              "txn": _hidden(page.text, "txn"), "allow": "1"})
            else:
                response = self.http.get(at().base + location, allow_redirects=False,
                                         timeout=10)
            location = _follow(response)
        params = query_of(location)
        assert "code" in params, location
        return params["code"]


def token_call(at: Provider, rp: RP, data: dict[str, str]) -> requests.Response:
    raw = f"{rp.client_id}:{rp.client_secret}".encode()
    return requests.post(at.base + "/token", data=data, timeout=15,
                         headers={"Authorization": "Basic " + base64.b64encode(raw).decode()})


def redeem(at: Provider, rp: RP, code: str, verifier: str) -> requests.Response:
    return token_call(at, rp, {"grant_type": "authorization_code", "code": code,
                               "redirect_uri": rp.redirect_uri, "code_verifier": verifier})


def refresh(at: Provider, rp: RP, refresh_token: str) -> requests.Response:
    return token_call(at, rp, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def signed_in_tokens(d: Deployment, start: Provider, finish: Provider) -> dict:
    person = Person()
    login, verifier = person.start(start, d.rp)
    code = person.sign_in(login, d.student, [finish])
    response = redeem(finish, d.rp, code, verifier)
    assert response.status_code == 200, response.text
    return response.json()
