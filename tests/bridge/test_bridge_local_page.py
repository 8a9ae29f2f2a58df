"""The bridge's local page (http://127.0.0.1:<port>/): what happened, and the box for a
tablet's pairing code. Abuse: another site must neither submit a code nor read the page."""

from __future__ import annotations

import base64
import http.client
import re
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import pytest
from bridge_helpers import CHALLENGE, PIN, FakeProvider, PkiCard, SimTransport
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from card_bridge.card import PcscStatus
from card_bridge.events import EventLog
from card_bridge.pin import ScriptedPinPrompt
from card_bridge.server import BridgeConfig, BridgeServer, make_server
from card_bridge.sim import VirtualJpkiCard
from card_bridge.token import signed_message

EVIL = "https://evil.example"


class Page:
    """A browser on the bridge's own page (or, with other headers, someone else's)."""

    def __init__(self, srv: BridgeServer) -> None:
        self.srv = srv
        self.own = f"http://127.0.0.1:{srv.port}"

    def send(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        conn.request(method, path, body=body,
                     headers={"Host": f"127.0.0.1:{self.srv.port}", **(headers or {})})
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, text

    def home(self, **headers: str) -> str:
        status, _, text = self.send("GET", "/", headers=headers)
        assert status == 200, text
        return text

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.home())
        assert found is not None
        return found.group(1)

    def post(self, path: str, fields: dict[str, str], origin: str | None = "own",
             **headers: str) -> tuple[int, dict[str, str], str]:
        h = {"Content-Type": "application/x-www-form-urlencoded", **headers}
        if origin is not None:
            h["Origin"] = self.own if origin == "own" else origin
        return self.send("POST", path, urlencode(fields).encode(), h)

    def submit_code(self, provider: str, code: str = "ABCD-1234") -> tuple[int, str]:
        status, _, text = self.post("/pair", {"csrf": self.csrf(), "provider": provider,
                                              "code": code})
        return status, text


@pytest.fixture
def bridge(provider: FakeProvider, vcard: VirtualJpkiCard) -> Iterator[Callable[..., Page]]:
    servers: list[BridgeServer] = []

    def start(pins: list[str | None] | None = None) -> Page:
        config = BridgeConfig.build(
            [provider.url, "https://id.example.ed.jp"],
            pin_prompt=ScriptedPinPrompt([PIN] if pins is None else pins),
            transport_factory=lambda: SimTransport(vcard),
            status_fn=lambda: PcscStatus("ok", ["Sim Reader"], ["Sim Reader"]),
            events=EventLog(stream=open("/dev/null", "w")),  # noqa: SIM115 - lives with it
        )
        srv = make_server(config, port=0)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return Page(srv)

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def pending_of(confirm_page: str) -> str:
    found = re.search(r'name="pending" value="([^"]+)"', confirm_page)
    assert found is not None, confirm_page
    return found.group(1)


def test_a_code_typed_on_the_page_signs_the_tablet_in(bridge, provider, test_card: PkiCard):
    page = bridge()
    home = page.home()
    assert "タブレットの番号を入れる" in home and 'action="/pair"' in home
    status, confirm = page.submit_code(provider.url, " abcd-1234 ")
    # First the person checks whose sign-in it is; the card is not touched yet.
    assert status == 200 and "あなたのタブレットですか" in confirm
    assert "Sakura Elementary" in confirm and "さくら小学校" in confirm and provider.posted == []
    status, headers, _ = page.post("/pair/confirm", {"csrf": page.csrf(), "answer": "yes",
                                                     "pending": pending_of(confirm)})
    assert status == 303 and headers["location"] == "/"
    (token,) = provider.posted
    test_card.public_key.verify(base64.b64decode(token["signature"]),
                                signed_message(provider.url, CHALLENGE),
                                padding.PKCS1v15(), hashes.SHA256())
    after = page.home()
    assert "<ruby>暗証番号<rt>あんしょうばんごう</rt></ruby>OK" in after and "PIN accepted" in after
    assert "「Sakura Elementary」（127.0.0.1:" in after and "にサインインしました" in after
    # The same confirmation cannot be sent twice.
    status, _, _ = page.post("/pair/confirm", {"csrf": page.csrf(), "answer": "yes",
                                               "pending": pending_of(confirm)})
    assert status == 400 and len(provider.posted) == 1


def test_wrong_pin_is_told_with_the_tries_left_and_can_be_tried_again(bridge, provider):
    page = bridge(pins=["9999", PIN])
    _, confirm = page.submit_code(provider.url)
    status, _, again = page.post("/pair/confirm", {"csrf": page.csrf(), "answer": "yes",
                                                   "pending": pending_of(confirm)})
    assert status == 200 and "のこり 2 回です" in again and "Wrong PIN: 2 tries left" in again
    assert provider.posted == [] and pending_of(again) != pending_of(confirm)
    home = page.home()
    assert "<ruby>暗証番号<rt>あんしょうばんごう</rt></ruby>がちがいます。のこり 2 回" in home
    assert "Wrong PIN: 2 tries left" in home
    status, _, _ = page.post("/pair/confirm", {"csrf": page.csrf(), "answer": "yes",
                                               "pending": pending_of(again)})
    assert status == 303 and len(provider.posted) == 1
    assert "にサインインしました" in page.home()


def test_no_means_the_card_is_not_touched(bridge, provider, vcard):
    page = bridge()
    _, confirm = page.submit_code(provider.url)
    status, _, _ = page.post("/pair/confirm", {"csrf": page.csrf(), "answer": "no",
                                               "pending": pending_of(confirm)})
    assert status == 303 and vcard.received == [] and provider.posted == []
    assert "サインインをやめました" in page.home()


def test_a_bad_code_or_a_provider_not_allowed_is_explained(bridge, provider):
    page = bridge()
    status, text = page.submit_code(provider.url, "WXYZ-9999")
    assert status == 400 and "その番号ではサインインできませんでした" in text
    status, text = page.submit_code("https://lookalike.example")
    assert status == 400 and "つなぐ先は使えません" in text


# -- abuse ------------------------------------------------------------------------------
def test_another_site_cannot_submit_a_code(bridge, provider, vcard):
    page = bridge()
    csrf = page.csrf()
    fields = {"csrf": csrf, "provider": provider.url, "code": "ABCD-1234"}
    for origin, extra in (
        (EVIL, {}),
        (None, {}),  # no Origin at all
        ("null", {}),  # a sandboxed frame or a data: page
        (page.own, {"Sec-Fetch-Site": "cross-site"}),
        (f"http://localhost:{page.srv.port}", {}),  # another origin than the Host's
    ):
        status, headers, text = page.post("/pair", fields, origin=origin, **extra)
        assert status == 403, (origin, extra, text)
        assert "access-control-allow-origin" not in headers
    # A form without this bridge's token (a page that guessed the field names).
    for token in ("guess", "", "暗証番号", csrf + "x"):
        status, _, _ = page.post("/pair", {**fields, "csrf": token})
        assert status == 403, token
    status, _, _ = page.send("POST", "/pair", b"csrf=%ff%fe&code=1",
                             {"Origin": page.own,
                              "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403
    status, _, _ = page.send("POST", "/pair", b'{"code": "ABCD-1234"}',
                             {"Origin": page.own, "Content-Type": "application/json"})
    assert status == 403
    status, _, _ = page.post("/pair", {**fields, "padding": "x" * 3000})  # over 2 KiB
    assert status == 403
    assert vcard.received == [] and provider.posted == []


def test_another_site_cannot_confirm_a_pending_code(bridge, provider, vcard):
    page = bridge()
    _, confirm = page.submit_code(provider.url)
    fields = {"csrf": page.csrf(), "answer": "yes", "pending": pending_of(confirm)}
    status, _, _ = page.post("/pair/confirm", fields, origin=EVIL)
    assert status == 403 and vcard.received == [] and provider.posted == []


def test_dns_rebinding_cannot_read_or_post(bridge, provider):
    page = bridge()
    port = page.srv.port
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil:{port}"):
        status, _, text = page.send("GET", "/", headers={"Host": host})
        assert status == 403 and "csrf" not in text
        status, _, _ = page.send("POST", "/pair", b"code=ABCD-1234",
                                 {"Host": host, "Origin": f"http://{host}",
                                  "Content-Type": "application/x-www-form-urlencoded"})
        assert status == 403 and provider.posted == []


def test_another_site_cannot_read_the_page_or_frame_it(bridge):
    page = bridge()
    status, headers, text = page.send("GET", "/", headers={"Origin": EVIL})
    assert status == 403 and "csrf" not in text
    status, headers, _ = page.send("GET", "/")
    assert status == 200 and "access-control-allow-origin" not in headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    # The status API refuses other sites as before.
    status, _, _ = page.send("GET", "/v1/status", headers={"Origin": EVIL})
    assert status == 403


def test_the_http_api_tells_what_happened_too(bridge, provider):
    import json

    page = bridge(pins=["9999", PIN])
    body = json.dumps({"challenge": CHALLENGE, "origin": provider.url}).encode()
    headers = {"Origin": provider.url, "Content-Type": "application/json"}
    status, _, _ = page.send("POST", "/v1/authenticate", body, headers)
    assert status == 401
    assert "Wrong PIN: 2 tries left" in page.home()
    status, _, _ = page.send("POST", "/v1/authenticate", body, headers)
    home = page.home()
    assert status == 200 and "PIN accepted" in home
    assert f"Signed in to {provider.url}" in home and f"{provider.url} にサインイン" in home
