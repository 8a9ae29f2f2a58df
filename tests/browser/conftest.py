"""Real servers for the browser journeys: the demo (provider with its demo test card PKI and
a demo relying party, as ``make run`` serves them), the card bridge on its default port with
an injected PIN, the virtual card in the vpcd reader of a real pcscd, and headless Chromium.

Marked ``browser`` and ``pcsc``; with ``CI=true`` a missing Chromium, Playwright or pcscd fails
the run instead of skipping it (``need``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.bridge.bridge_helpers import PIN, REPO, VPCD_PORT, VPCD_READER, wait_for
from tests.conftest import need

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts" / "browser"
BRIDGE_PORT = 47263  # the page's CSP and data-bridge-url name this port


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def vpcd_reader() -> Iterator[str]:
    """pcscd with the vpcd reader, held for the module: one vpcd slot serves the machine,
    so the bridge tests (same lock file) and these never share it."""
    try:
        from card_bridge.card import pcsc_status
    except ImportError:  # pragma: no cover
        need(False, "pyscard is not installed")
    if os.geteuid() == 0 and shutil.which("sh"):
        done = subprocess.run(["sh", str(REPO / "scripts" / "pcsc-up.sh")], capture_output=True,
                              text=True, timeout=600, check=False)
        need(done.returncode == 0, f"scripts/pcsc-up.sh failed: {done.stderr.strip()[-300:]}")
    status = pcsc_status()
    need(status.pcsc == "ok", f"pcscd is not running ({status.detail})")
    need(VPCD_READER in status.readers, f"vpcd reader {VPCD_READER!r} not found")
    lock = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "mynagate-vpcd.lock"), "w")  # noqa: SIM115
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield VPCD_READER
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo as ``make run`` serves it (its own state directory, development settings,
    ``setup_demo_card``'s test PKI), on free ports: the provider and one demo app."""
    from idp.demo.seed import DEMO_RPS
    from idp.demo.serve import serve_demo

    servers = serve_demo(state_dir=tmp_path_factory.mktemp("browser-demo"), provider_port=0,
                         rps=[replace(DEMO_RPS[0], port=0)])
    yield servers
    card = servers.provider_app.extensions["mynagate"].card
    if card.refresher is not None:
        card.refresher.stop()
    servers.stop()


@dataclass
class VirtualCard:
    """The demo card in the vpcd reader, seen through pcscd."""

    card: object
    client: object

    def set_tries_left(self, n: int) -> None:
        self.card.set_tries_left(n)

    @property
    def tries_left(self) -> int:
        return self.card.tries_left


@pytest.fixture(scope="module")
def virtual_card(vpcd_reader, demo) -> Iterator[VirtualCard]:
    from card_bridge.card import pcsc_status
    from card_bridge.sim import VirtualJpkiCard, VpcdCardClient

    pki_dir = Path(demo.provider_app.extensions["mynagate"].settings.jpki_trust_anchors[0]).parent
    card = VirtualJpkiCard.from_files(str(pki_dir / "card-1-cert.der"),
                                      str(pki_dir / "card-1-key.pem"), PIN)
    client = VpcdCardClient(card, port=VPCD_PORT).start()

    def present() -> bool:
        return vpcd_reader in pcsc_status(vpcd_reader).readers_with_card

    need(client.wait_connected(10), f"the simulator could not reach vpcd on port {VPCD_PORT}")
    need(wait_for(present, 10), "pcscd did not report the simulated card")
    yield VirtualCard(card, client)
    client.stop()
    wait_for(lambda: not present(), 10)


class Bridge:
    """The card bridge's loopback server, started and stopped by the tests."""

    def __init__(self, origin: str, reader: str) -> None:
        from card_bridge.pin import ScriptedPinPrompt

        self.origin = origin
        self.reader = reader
        self.prompt = ScriptedPinPrompt()
        self.server = None
        self.thread: threading.Thread | None = None

    def start(self) -> Bridge:
        from card_bridge.card import PcscTransport
        from card_bridge.server import BridgeConfig, make_server

        config = BridgeConfig.build([self.origin], reader=self.reader, pin_prompt=self.prompt,
                                    transport_factory=lambda: PcscTransport(self.reader))
        try:
            self.server = make_server(config, BRIDGE_PORT)
        except OSError as exc:
            need(False, f"port {BRIDGE_PORT} is taken (another card bridge running?): {exc}")
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="card-bridge")
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def answer(self, *pins: str | None) -> None:
        """What the person types into the PIN window, next time(s) it opens."""
        self.prompt.answers = list(pins)
        self.prompt.asked.clear()


@pytest.fixture(scope="module")
def bridge(demo, virtual_card, vpcd_reader) -> Iterator[Bridge]:
    running = Bridge(demo.provider_app.extensions["mynagate"].settings.issuer_origin,
                     vpcd_reader).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def chromium():
    need(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
