"""An independent relying party: npm openid-client v6 (tests/rp_node/rp.mjs) against the
provider served over real HTTP — discovery, code flow with PKCE, ID token signature and claims
(``enableNonRepudiationChecks``), UserInfo and a refresh.

openid-client's documented flow sends PKCE and no ``state`` and no ``nonce``; it then refuses
a ``state`` in the response, a missing ``iss`` (RFC 9207) and a ``nonce`` in the ID token, so
these tests also check the provider adds nothing the client did not ask for.

Reuse for card sign-in: call :func:`run_openid_client` with ``acr_values=ACR_CARD`` and a
``drive`` function that completes the card page and returns the callback URL.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from idp.oidc.claims import subject_for
from idp.signin.context import ACR_PASSWORD
from idp.store.models import Client
from tests.conftest import RP, need
from tests.rp_node.live import HttpBrowser

RP_DIR = Path(__file__).resolve().parent
NODE_TIMEOUT = 60

pytestmark = pytest.mark.node


def ensure_openid_client() -> None:
    """node must exist; ``npm ci`` runs only when node_modules is missing (make test's
    scripts/test-deps.sh normally did it already). Missing tools skip locally, fail in CI."""
    need(shutil.which("node") is not None, "node is not installed")
    if (RP_DIR / "node_modules" / "openid-client").is_dir():
        return
    need(shutil.which("npm") is not None, "npm is not installed")
    result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=RP_DIR,
                            capture_output=True, text=True, timeout=300)
    need(result.returncode == 0, f"npm ci failed: {result.stderr[-800:]}")


def run_openid_client(issuer: str, rp: RP, drive: Callable[[str], str], *,
                      scope: str = "openid profile offline_access",
                      acr_values: str | None = None) -> dict:
    """Run rp.mjs against ``issuer`` as ``rp``. ``drive`` gets the authorization URL that
    openid-client built, plays the person in the browser, and returns the URL the provider
    redirected back to. Returns ``{"authorization_url", "callback_url"}`` plus either
    ``"summary"`` (what openid-client accepted) or ``"error"`` (what it refused, and at
    which stage)."""
    ensure_openid_client()
    config = {"issuer": issuer, "client_id": rp.client_id, "client_secret": rp.client_secret,
              "redirect_uri": rp.redirect_uri, "scope": scope,
              "auth_method": rp.auth_method}
    if acr_values:
        config["acr_values"] = acr_values
    proc = subprocess.Popen(["node", str(RP_DIR / "rp.mjs"), json.dumps(config)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline() or '{"error": {"stage": "start"}}')
        if "error" in first:
            proc.wait(timeout=NODE_TIMEOUT)
            first["stderr"] = proc.stderr.read()[-2000:]
            return first
        callback_url = drive(first["authorization_url"])
        out, err = proc.communicate(callback_url + "\n", timeout=NODE_TIMEOUT)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, f"openid-client printed nothing; stderr: {err[-2000:]}"
    result = json.loads(lines[-1])
    result.update(authorization_url=first["authorization_url"], callback_url=callback_url,
                  stderr=err[-2000:])
    return result


def password_drive(student, redirect_uri: str, *, allow: bool = True) -> Callable[[str], str]:
    """A ``drive`` for run_openid_client: ID/password sign-in and consent over real HTTP."""
    browser = HttpBrowser(student, allow=allow)

    def drive(authorization_url: str) -> str:
        url, response = browser.go(authorization_url, stop_at=redirect_uri)
        assert url.startswith(redirect_uri), (url, response.status_code, response.text[:500])
        return url

    return drive


def expected_sub(svc, rp: RP, account_id: str) -> str:
    with svc.db.session() as db:
        return subject_for(svc.settings.pairwise_secret, db.get(Client, rp.client_id),
                           account_id)


@pytest.mark.parametrize("auth_method", ["client_secret_post", "client_secret_basic"])
def test_openid_client_code_flow_userinfo_and_refresh(live_provider, make_rp, make_student,
                                                      auth_method):
    rp = make_rp(host="rp-node.example.test", auth_method=auth_method)
    student = make_student()
    result = run_openid_client(live_provider.issuer, rp, password_drive(student, rp.redirect_uri))
    assert "summary" in result, result

    # What the browser carried back: code and iss, no state (none was sent).
    authorization = parse_qs(urlsplit(result["authorization_url"]).query)
    assert authorization["code_challenge_method"] == ["S256"]
    assert "state" not in authorization and "nonce" not in authorization
    callback = parse_qs(urlsplit(result["callback_url"]).query)
    assert callback["iss"] == [live_provider.issuer]
    assert "state" not in callback

    summary = result["summary"]
    claims = summary["id_token_claims"]
    sub = expected_sub(live_provider.services, rp, student.id)
    assert summary["issuer"] == claims["iss"] == live_provider.issuer
    assert claims["aud"] in (rp.client_id, [rp.client_id])
    assert claims["sub"] == sub
    assert claims["acr"] == ACR_PASSWORD
    assert claims["amr"] == ["pwd"]
    assert "nonce" not in claims
    assert isinstance(claims["auth_time"], int) and claims["exp"] > claims["iat"]
    assert summary["token_type"].lower() == "bearer"
    assert summary["userinfo"]["sub"] == sub
    assert summary["userinfo"]["name"] == "山田 花子"  # profile scope granted

    assert summary["has_refresh_token"], "offline_access with consent must give a refresh token"
    refreshed = summary["refreshed"]
    assert refreshed["rotated"]
    assert refreshed["userinfo_sub"] == sub
    again = refreshed["id_token_claims"]
    assert again is not None
    assert again["sub"] == sub and again["iss"] == live_provider.issuer
    assert again["auth_time"] == claims["auth_time"]


def test_openid_client_sees_iss_on_a_denied_consent(live_provider, make_rp, make_student):
    """Error responses carry ``iss`` too: openid-client reports the person's refusal
    (access_denied), not a missing-issuer or state failure."""
    rp = make_rp(host="rp-node-deny.example.test", auth_method="client_secret_post")
    student = make_student()
    result = run_openid_client(live_provider.issuer, rp,
                               password_drive(student, rp.redirect_uri, allow=False),
                               scope="openid profile")
    assert "error" in result, result
    callback = parse_qs(urlsplit(result["callback_url"]).query)
    assert callback["error"] == ["access_denied"]
    assert callback["iss"] == [live_provider.issuer]
    error = result["error"]
    assert error["stage"] == "authorization_code_grant"
    assert error["name"] == "AuthorizationResponseError", error
    assert error["error"] == "access_denied", error
