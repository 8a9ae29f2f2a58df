"""Pairing (tablet flow) against a fake provider, and the command line."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from bridge_helpers import PIN, PkiCard, SimTransport
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from card_bridge.cli import main
from card_bridge.errors import Cancelled, WrongPin
from card_bridge.pair import PairingError, pair_url, pair_with_provider
from card_bridge.pin import ScriptedPinPrompt
from card_bridge.sim import VirtualJpkiCard
from card_bridge.token import signed_message

CHALLENGE = "c" * 43


class FakeProvider:
    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []
        self.origin_override: str | None = None
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path != "/login/card/pair/ABCD-1234":
                    self._json(404, {"error": "not_found", "error_description": "unknown code"})
                    return
                self._json(200, {"challenge": CHALLENGE, "origin": outer.origin,
                                 "client_name": "Sakura Elementary"})  # fmt: skip

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.posted.append(body)
                self._json(200, {"status": "ok"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return self.origin_override or self.url


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    p = FakeProvider()
    yield p
    p.httpd.shutdown()
    p.httpd.server_close()


def test_pair_full_flow(provider: FakeProvider, vcard: VirtualJpkiCard, test_card: PkiCard) -> None:
    prompt = ScriptedPinPrompt([PIN])
    confirmed: list[tuple[str, str]] = []
    answer = pair_with_provider(
        provider.url, "ABCD-1234", prompt=prompt,
        transport_factory=lambda: SimTransport(vcard),
        confirm=lambda name, origin: confirmed.append((name, origin)) or True,
    )  # fmt: skip
    assert answer == {"status": "ok"}
    assert confirmed == [("Sakura Elementary", provider.url)]
    assert prompt.asked[0][0].startswith("Sakura Elementary (127.0.0.1:")
    (token,) = provider.posted
    assert token["format"] == "jpki-auth:1"
    assert base64.b64decode(token["certificate"]) == test_card.cert_der
    test_card.public_key.verify(
        base64.b64decode(token["signature"]), signed_message(provider.url, CHALLENGE),
        padding.PKCS1v15(), hashes.SHA256(),
    )  # fmt: skip


def test_pair_refuses_foreign_origin(provider: FakeProvider, vcard: VirtualJpkiCard) -> None:
    # A look-alike provider relaying the real site's challenge must not get a token.
    provider.origin_override = "https://id.real-school.ed.jp"
    with pytest.raises(PairingError, match="not for itself"):
        pair_with_provider(provider.url, "ABCD-1234", prompt=ScriptedPinPrompt([PIN]),
                           transport_factory=lambda: SimTransport(vcard))  # fmt: skip
    assert vcard.received == [] and provider.posted == []


def test_pair_declined_and_wrong_pin(provider: FakeProvider, vcard: VirtualJpkiCard) -> None:
    with pytest.raises(Cancelled):
        pair_with_provider(provider.url, "ABCD-1234", prompt=ScriptedPinPrompt([PIN]),
                           transport_factory=lambda: SimTransport(vcard),
                           confirm=lambda n, o: False)  # fmt: skip
    assert vcard.received == []
    with pytest.raises(WrongPin):
        pair_with_provider(provider.url, "ABCD-1234", prompt=ScriptedPinPrompt(["9999"]),
                           transport_factory=lambda: SimTransport(vcard))  # fmt: skip
    assert provider.posted == []


def test_pair_errors(provider: FakeProvider, vcard: VirtualJpkiCard) -> None:
    with pytest.raises(PairingError, match="404"):
        pair_with_provider(provider.url, "ZZZZ-0000", prompt=ScriptedPinPrompt([PIN]),
                           transport_factory=lambda: SimTransport(vcard))  # fmt: skip
    with pytest.raises(PairingError):
        pair_url("http://id.example.ed.jp", "ABCD")  # plain http off loopback
    with pytest.raises(PairingError):
        pair_url("https://id.example.ed.jp", "../../admin")
    assert pair_url("https://id.example.ed.jp/", "AB-12") == (
        "https://id.example.ed.jp/login/card/pair/AB-12"
    )


# --- CLI -------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [[], ["serve"], ["simulate"], ["status"], ["pair"]])
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus"],
        ["serve"],
        ["serve", "--allow-origin", "http://evil.example"],
        ["serve", "--allow-origin", "https://ok.example", "--port", "99999"],
        ["simulate", "--cert", "x"],
        ["pair", "ABCD"],
    ],
)
def test_bad_args_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err


def test_simulate_bad_pin_and_missing_files(tmp_path, capsys) -> None:
    assert main(["simulate", "--cert", "a", "--key", "b", "--pin", "12"]) == 2
    assert main(["simulate", "--cert", str(tmp_path / "a"), "--key", "b", "--pin", "1234"]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 2


def test_console_script_entry_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "card_bridge.cli", "--version"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0 and "card-bridge" in done.stdout


def test_bridge_never_imports_idp() -> None:
    code = (
        "import sys, card_bridge.cli, card_bridge.server, card_bridge.card, card_bridge.pair, "
        "card_bridge.pin, card_bridge.sim, card_bridge.token; "
        "sys.exit(any(m == 'idp' or m.startswith('idp.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
