"""Request ids and the JSON log: every line is JSON with the request's id, the id is echoed
only when it is plainly an id from the trusted proxy, and no line pairs an account id with
the pairwise ``sub`` an app received."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from tests.conftest import redeem

HEX_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """What the provider writes to its log during the test, as the lines an operator's
    collector would read (the app's own JSON formatter); ``.getvalue()`` reads it."""
    from idp.app import json_formatter

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)  # what IDP_LOG_LEVEL's default gives a served app
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_every_request_gets_an_id_echoed_in_the_header(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert HEX_ID.match(first) and HEX_ID.match(second) and first != second


def test_an_incoming_id_is_ignored_without_a_trusted_proxy(client):
    response = client.get("/healthz", headers={"X-Request-ID": "lb-0123456789abcdef"})
    assert response.headers["X-Request-ID"] != "lb-0123456789abcdef"
    assert HEX_ID.match(response.headers["X-Request-ID"])


def test_the_trusted_proxys_id_is_taken(proxied_app):
    response = proxied_app.test_client().get(
        "/healthz", headers={"X-Request-ID": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"})
    assert response.headers["X-Request-ID"] == "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


@pytest.mark.parametrize("forged", [
    "abc\r\nSet-Cookie: evil=1", "abcdefgh\nlevel=error", "a" * 10_000, "short",
    "spaces in the id", "<script>alert(1)</script>", "-leading-dash-1234", "ünïcödé-id-1234",
    '{"json":"inside"}'])
def test_a_forged_id_is_neither_echoed_nor_logged(proxied_app, forged, log_text):
    client = proxied_app.test_client()
    try:
        response = client.get("/healthz", headers={"X-Request-ID": forged})
    except ValueError:
        return  # the test client itself refuses a header with a newline: nothing reached us
    assert response.status_code == 200
    echoed = response.headers["X-Request-ID"]
    assert echoed != forged and HEX_ID.match(echoed)
    assert "Set-Cookie" not in response.headers
    text = log_text.getvalue()
    assert forged not in text and forged[:60] not in text
    assert text.count('"event": "request"') == 1


def test_the_access_line(client, log_text):
    client.get("/login/card/pair/ABCDEFGH/status", query_string={"secret": "s3cr3t"})
    text = log_text.getvalue()
    (line,) = [json.loads(raw) for raw in text.splitlines() if '"idp.access"' in raw]
    assert line["event"] == "request" and line["level"] == "info"
    assert line["method"] == "GET" and isinstance(line["status"], int)
    assert isinstance(line["duration_ms"], float) and HEX_ID.match(line["request_id"])
    assert line["endpoint"] in ("pairing.status", "unmatched") or "." in line["endpoint"]
    # The path (a pairing code) and the query are never in the access line.
    assert "ABCDEFGH" not in text and "s3cr3t" not in text


@pytest.fixture
def two_rps(make_rp):
    """Registered before the log is read: registering is not a request (no request id)."""
    return make_rp("math.example.test"), make_rp("reading.example.test")


def test_sign_in_and_sso_logs_are_json_with_ids_and_never_pair_account_and_sub(
        app, browser, two_rps, student, log_text):
    """Password sign-in, then card-less SSO at a second app (the session is reused):
    authorize -> token -> userinfo at each. Every line is JSON with a request id, and no line
    holds both the account id and a ``sub`` an app got."""
    subs = []
    for rp in two_rps:
        query, verifier = browser.sign_in_and_authorize(rp, student, scope="openid profile")
        tokens = redeem(browser.c, rp, query["code"], verifier).get_json()
        info = browser.c.get("/userinfo",
                             headers={"Authorization": "Bearer " + tokens["access_token"]})
        assert info.status_code == 200
        subs.append(info.get_json()["sub"])
    assert subs[0] != subs[1]  # pairwise: two sectors, two subs
    text = log_text.getvalue()
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) > 10
    parsed = [json.loads(line) for line in lines]  # every line is JSON
    # The bus's listener thread serves no request (a Redis hiccup it logs has no id).
    served = [entry for entry in parsed if entry.get("logger") != "idp.bus"]
    assert len(served) > 10
    assert all(HEX_ID.match(entry.get("request_id", "")) for entry in served), \
        [entry for entry in served if "request_id" not in entry][:3]
    assert any(student.id in line for line in lines)  # the audit does name the account
    for line in lines:
        assert not (student.id in line and any(sub in line for sub in subs)), line
    assert not any(sub in line for line in lines for sub in subs)
    # The second app's sign-in reused the session: one password sign-in in the log.
    assert sum('"login.password"' in line for line in lines) == 1
