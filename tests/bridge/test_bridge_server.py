"""The loopback HTTP API. Most tests use the in-process simulator (no pcscd needed); the
ones marked pcsc go through the real PC/SC stack."""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bridge_helpers import PIN, REPO, PkiCard, Sim, SimTransport
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from card_bridge.card import PcscStatus
from card_bridge.origins import Site
from card_bridge.pin import QueuePinPrompt, ScriptedPinPrompt
from card_bridge.server import DEFAULT_PORT, BridgeConfig, BridgeServer, make_server
from card_bridge.sim import VirtualJpkiCard
from card_bridge.token import signed_message

ORIGIN = "https://id.example.ed.jp"
CHALLENGE = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


@pytest.fixture
def serve() -> Iterator[Callable[[BridgeConfig], BridgeServer]]:
    servers: list[BridgeServer] = []

    def start(config: BridgeConfig) -> BridgeServer:
        srv = make_server(config, port=0)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def request(
    srv: BridgeServer,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    h = {"Host": f"127.0.0.1:{srv.port}", **(headers or {})}
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers=h)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    hdrs = {k.lower(): v for k, v in resp.getheaders()}
    return resp.status, hdrs, (json.loads(payload) if payload else None)


def auth(srv: BridgeServer, origin: str = ORIGIN, **over: Any) -> tuple[int, dict, Any]:
    body = {"challenge": CHALLENGE, "origin": origin, **over}
    return request(
        srv,
        "POST",
        "/v1/authenticate",
        body,
        {"Origin": origin, "Content-Type": "application/json"},
    )


@pytest.fixture
def sim_config(vcard: VirtualJpkiCard) -> BridgeConfig:
    return BridgeConfig.build(
        [ORIGIN],
        pin_prompt=ScriptedPinPrompt([PIN]),
        transport_factory=lambda: SimTransport(vcard),
        status_fn=lambda: PcscStatus("ok", ["Sim Reader"], ["Sim Reader"]),
    )


def test_default_port_is_documented() -> None:
    assert DEFAULT_PORT == 47263
    assert "47263" in (REPO / "docs" / "card-bridge.md").read_text()


def test_binds_loopback_only(serve, sim_config) -> None:
    srv = serve(sim_config)
    assert srv.server_address[0] == "127.0.0.1"


def test_status_without_pcscd_in_process(serve) -> None:
    cfg = BridgeConfig.build([ORIGIN], reader="Bogus Reader 42", pin_prompt=ScriptedPinPrompt([]))
    srv = serve(cfg)
    status, _, body = request(srv, "GET", "/v1/status")
    assert status == 200
    assert body["reader"] is False and body["card"] is False
    assert body["pcsc"] in ("ok", "unavailable")
    assert body["version"]


def test_status_with_no_pcscd_at_all_subprocess(tmp_path) -> None:
    # PCSCLITE_CSOCK_NAME points libpcsclite at a socket that does not exist: exactly what
    # a PC without pcscd looks like. The server must start and say so.
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(tmp_path / "no-pcscd.sock")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "card_bridge.cli", "serve", "--port", "0",
         "--allow-origin", ORIGIN, "--prompt", "terminal"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in first, first + proc.stderr.read()
        port = int(first.rsplit(":", 1)[1])
        out = proc.stdout.readline() + proc.stdout.readline()
        assert "PC/SC unavailable" in out
        # Where to type a tablet's code: the bridge's own page (issue 12).
        assert f"http://127.0.0.1:{port}/" in proc.stdout.readline()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/v1/status")
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 200
        assert body["pcsc"] == "unavailable"
        assert body["reader"] is False and body["card"] is False and body["readers"] == []
        # authenticate also answers (no reader), it does not hang or crash
        conn.request(
            "POST", "/v1/authenticate",
            body=json.dumps({"challenge": CHALLENGE, "origin": ORIGIN}),
            headers={"Origin": ORIGIN, "Content-Type": "application/json"},
        )  # fmt: skip
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 503 and body["error"] == "no_reader"
        # ... and the terminal tells the person at the PC what happened.
        proc.stdout.readline()  # the English half of the page hint
        told = proc.stdout.readline()
        assert "カードリーダーが見つかりません" in told and "No card reader was found" in told
    finally:
        proc.terminate()
        proc.wait(10)


def test_authenticate_in_process(serve, sim_config, test_card: PkiCard) -> None:
    srv = serve(sim_config)
    status, hdrs, body = auth(srv)
    assert status == 200, body
    assert hdrs["access-control-allow-origin"] == ORIGIN
    assert hdrs["cache-control"] == "no-store"
    assert body["format"] == "jpki-auth:1" and body["algorithm"] == "RS256"
    assert body["bridge"].startswith("mynagate-card-bridge/")
    cert = x509.load_der_x509_certificate(base64.b64decode(body["certificate"]))
    cert.public_key().verify(
        base64.b64decode(body["signature"]), signed_message(ORIGIN, CHALLENGE),
        padding.PKCS1v15(), hashes.SHA256(),
    )  # fmt: skip
    assert sim_config.pin_prompt.asked == [(Site("id.example.ed.jp"), 3, False)]


def test_origin_not_allowed(serve, sim_config) -> None:
    srv = serve(sim_config)
    status, hdrs, body = auth(srv, origin="https://evil.example")
    assert status == 403
    assert "access-control-allow-origin" not in hdrs
    assert sim_config.pin_prompt.asked == []
    # and status refuses foreign pages too
    status, hdrs, _ = request(srv, "GET", "/v1/status", headers={"Origin": "https://evil.example"})
    assert status == 403 and "access-control-allow-origin" not in hdrs
    status, hdrs, _ = request(srv, "GET", "/v1/status", headers={"Origin": ORIGIN})
    assert status == 200 and hdrs["access-control-allow-origin"] == ORIGIN


def test_origin_header_must_match_body(serve, sim_config) -> None:
    srv = serve(sim_config)
    other = "https://other.example.ed.jp"
    sim_config.allowed_origins = frozenset({ORIGIN, other})
    status, _, body = request(
        srv, "POST", "/v1/authenticate", {"challenge": CHALLENGE, "origin": other},
        {"Origin": ORIGIN, "Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 403 and body["error"] == "origin_mismatch"
    status, _, _ = request(
        srv, "POST", "/v1/authenticate", {"challenge": CHALLENGE, "origin": ORIGIN},
        {"Content-Type": "application/json"},  # no Origin header at all
    )  # fmt: skip
    assert status == 403
    assert sim_config.pin_prompt.asked == []


def test_dns_rebinding_host_refused(serve, sim_config) -> None:
    srv = serve(sim_config)
    status, _, body = request(srv, "GET", "/v1/status", headers={"Host": "evil.example:47263"})
    assert status == 403 and body["error"] == "forbidden_host"


def test_preflight_private_network(serve, sim_config) -> None:
    srv = serve(sim_config)
    h = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
        "Access-Control-Request-Private-Network": "true",
    }
    status, hdrs, _ = request(srv, "OPTIONS", "/v1/authenticate", headers=h)
    assert status == 204
    assert hdrs["access-control-allow-origin"] == ORIGIN
    assert hdrs["access-control-allow-private-network"] == "true"
    assert "POST" in hdrs["access-control-allow-methods"]
    assert "content-type" in hdrs["access-control-allow-headers"].lower()
    # not asked -> not given
    del h["Access-Control-Request-Private-Network"]
    status, hdrs, _ = request(srv, "OPTIONS", "/v1/authenticate", headers=h)
    assert status == 204 and "access-control-allow-private-network" not in hdrs
    # foreign origin: no CORS at all
    h["Origin"] = "https://evil.example"
    h["Access-Control-Request-Private-Network"] = "true"
    status, hdrs, _ = request(srv, "OPTIONS", "/v1/authenticate", headers=h)
    assert status == 403
    assert "access-control-allow-origin" not in hdrs
    assert "access-control-allow-private-network" not in hdrs


@pytest.mark.parametrize("challenge", ["short", "a" * 42, "a" * 42 + "=", "+" * 43, 12345, None])
def test_bad_challenge(serve, sim_config, challenge) -> None:
    srv = serve(sim_config)
    status, _, body = auth(srv, challenge=challenge)
    assert status == 400 and body["error"] == "invalid_request"
    assert sim_config.pin_prompt.asked == []


def test_wrong_content_type(serve, sim_config) -> None:
    srv = serve(sim_config)
    raw = json.dumps({"challenge": CHALLENGE, "origin": ORIGIN}).encode()
    status, _, body = request(
        srv, "POST", "/v1/authenticate", raw=raw,
        headers={"Origin": ORIGIN, "Content-Type": "text/plain"},
    )  # fmt: skip
    assert status in (400, 415) and body["error"] == "invalid_request"


def test_oversized_body(serve, sim_config) -> None:
    srv = serve(sim_config)
    big = json.dumps({"challenge": CHALLENGE, "origin": ORIGIN, "pad": "x" * 5000}).encode()
    status, _, _ = request(
        srv, "POST", "/v1/authenticate", raw=big,
        headers={"Origin": ORIGIN, "Content-Type": "application/json"},
    )  # fmt: skip
    assert status in (400, 413)


def test_not_json_and_pin_field_ignored(serve, sim_config) -> None:
    srv = serve(sim_config)
    status, _, _ = request(
        srv, "POST", "/v1/authenticate", raw=b"{nope",
        headers={"Origin": ORIGIN, "Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 400
    # A "pin" in the body is never used: the scripted prompt is the only PIN source.
    sim_config.pin_prompt.answers = [None]
    status, _, body = auth(srv, pin=PIN)
    assert status == 400 and body["error"] == "cancelled"


def test_cancelled_prompt(serve, sim_config, vcard: VirtualJpkiCard) -> None:
    sim_config.pin_prompt.answers = [None]
    srv = serve(sim_config)
    status, hdrs, body = auth(srv)
    assert body["error"] == "cancelled" and 400 <= status < 500
    assert body["error_description"] and body["error_description_ja"]
    assert hdrs["access-control-allow-origin"] == ORIGIN
    assert vcard.tries_left == 3


def test_wrong_pin_reports_tries_left(serve, sim_config) -> None:
    sim_config.pin_prompt.answers = ["0000"]
    srv = serve(sim_config)
    status, _, body = auth(srv)
    assert status == 401
    assert body == {**body, "error": "wrong_pin", "tries_left": 2}


def test_concurrent_request_gets_409(serve, vcard: VirtualJpkiCard) -> None:
    prompt = QueuePinPrompt(timeout=20)
    cfg = BridgeConfig.build(
        [ORIGIN], pin_prompt=prompt, transport_factory=lambda: SimTransport(vcard)
    )
    srv = serve(cfg)
    first: dict[str, Any] = {}
    t = threading.Thread(target=lambda: first.update(r=auth(srv)))
    t.start()
    prompt.questions.get(timeout=10)  # the first sign-in is waiting for its PIN
    status, _, body = auth(srv)
    assert status == 409 and body["error"] == "reader_busy"
    _, _, st = request(srv, "GET", "/v1/status")
    assert st["busy"] is True
    prompt.answers.put(PIN)
    t.join(20)
    assert first["r"][0] == 200


def test_unknown_path(serve, sim_config) -> None:
    srv = serve(sim_config)
    assert request(srv, "GET", "/v1/nope")[0] == 404


# --- through real PC/SC ----------------------------------------------------------------
@pytest.mark.pcsc
def test_authenticate_via_pcsc(serve, sim: Sim, test_card: PkiCard) -> None:
    prompt = ScriptedPinPrompt([PIN])
    cfg = BridgeConfig.build([ORIGIN], reader=sim.reader, pin_prompt=prompt)
    srv = serve(cfg)
    status, _, st = request(srv, "GET", "/v1/status")
    assert st["pcsc"] == "ok" and st["card"] is True and sim.reader in st["readers"]
    t0 = time.monotonic()
    status, _, body = auth(srv)
    assert status == 200, body
    assert time.monotonic() - t0 < 20
    assert base64.b64decode(body["certificate"]) == test_card.cert_der
    test_card.public_key.verify(
        base64.b64decode(body["signature"]), signed_message(ORIGIN, CHALLENGE),
        padding.PKCS1v15(), hashes.SHA256(),
    )  # fmt: skip
    assert prompt.asked == [(Site("id.example.ed.jp"), 3, False)]


@pytest.mark.pcsc
def test_cancelled_via_pcsc(serve, sim: Sim) -> None:
    cfg = BridgeConfig.build([ORIGIN], reader=sim.reader, pin_prompt=ScriptedPinPrompt([None]))
    srv = serve(cfg)
    status, _, body = auth(srv)
    assert body["error"] == "cancelled"
    assert sim.card.tries_left == 3
