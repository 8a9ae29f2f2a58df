"""The bridge's own page in a real Chromium: its form works from the page itself (a browser
really sends the Origin the server checks: with `Referrer-Policy: no-referrer` Chromium
sent `Origin: null` and the page refused its own form), and a page on another origin that
posts a code to it is refused. Screenshots in test-artifacts/browser/."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from bridge_helpers import PIN, REPO, FakeProvider, SimTransport, unavailable

from card_bridge.card import PcscStatus
from card_bridge.events import EventLog
from card_bridge.pin import ScriptedPinPrompt
from card_bridge.server import BridgeConfig, BridgeServer, make_server
from card_bridge.sim import VirtualJpkiCard

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "browser"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless=new", "--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def bridge(provider: FakeProvider, vcard: VirtualJpkiCard) -> Iterator[BridgeServer]:
    config = BridgeConfig.build(
        [provider.url], pin_prompt=ScriptedPinPrompt([PIN]),
        transport_factory=lambda: SimTransport(vcard),
        status_fn=lambda: PcscStatus("ok", ["Sim Reader"], ["Sim Reader"]),
        events=EventLog(stream=open("/dev/null", "w")),  # noqa: SIM115
    )
    srv = make_server(config, port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_a_code_typed_into_the_page_in_chromium_signs_the_tablet_in(chromium, bridge, provider):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = chromium.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"http://127.0.0.1:{bridge.port}/")
    page.fill("#code", "abcd-1234")
    page.click("button[type=submit]")
    page.wait_for_selector("text=あなたのタブレットですか")
    page.screenshot(path=str(ARTIFACTS / "bridge-page-confirm.png"), full_page=True)
    page.click("button[value=yes]")
    page.wait_for_selector("li.signed_in")
    page.screenshot(path=str(ARTIFACTS / "bridge-page-signed-in.png"), full_page=True)
    assert "PIN accepted" in page.inner_text("li.pin_ok") and len(provider.posted) == 1
    page.close()


def test_a_page_on_another_origin_cannot_post_a_code(chromium, bridge, provider, vcard):
    target = f"http://127.0.0.1:{bridge.port}/pair"

    class Evil(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = (f'<form id="f" method="post" action="{target}">'
                    '<input name="code" value="ABCD-1234"><input name="csrf" value="x">'
                    f'<input name="provider" value="{provider.url}"></form>').encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    evil = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        page = chromium.new_page()
        page.goto(f"http://localhost:{evil.server_address[1]}/")
        with page.expect_navigation():
            page.evaluate("document.getElementById('f').submit()")
        assert "このページは使えません" in page.inner_text("body")
        # ... and a script there cannot read the bridge's page (no CORS header: fetch fails)
        page.goto(f"http://localhost:{evil.server_address[1]}/")
        read = page.evaluate(f"""fetch("http://127.0.0.1:{bridge.port}/")
            .then(r => r.text()).then(t => "read:" + t.length, e => "blocked")""")
        assert read == "blocked"
        page.close()
    finally:
        evil.shutdown()
        evil.server_close()
    assert vcard.received == [] and provider.posted == []
