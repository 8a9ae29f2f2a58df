"""Pairing (tablet flow) against a fake provider, and the command line."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
from bridge_helpers import CHALLENGE, PIN, FakeProvider, PkiCard, SimTransport
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from card_bridge.cli import main
from card_bridge.errors import Cancelled, WrongPin
from card_bridge.pair import PairingError, PairingFacts, facts_of, pair_url, pair_with_provider
from card_bridge.pin import ScriptedPinPrompt
from card_bridge.sim import VirtualJpkiCard
from card_bridge.token import signed_message


def test_pair_full_flow(provider: FakeProvider, vcard: VirtualJpkiCard, test_card: PkiCard) -> None:
    prompt = ScriptedPinPrompt([PIN])
    confirmed: list[tuple[str, str]] = []
    answer = pair_with_provider(
        provider.url, "ABCD-1234", prompt=prompt,
        transport_factory=lambda: SimTransport(vcard),
        confirm=lambda facts: confirmed.append((facts.client_name, facts.origin)) or True,
    )  # fmt: skip
    assert answer == {"status": "ok"}
    assert confirmed == [("Sakura Elementary", provider.url)]
    # The PIN window names the app the provider sent, then the host the bridge talks to.
    site = prompt.asked[0][0]
    assert site.app == "Sakura Elementary" and site.where.startswith("127.0.0.1:")
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
                           confirm=lambda facts: False)  # fmt: skip
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


# --- issue 8: confirm whose login a code belongs to -------------------------------------
def test_the_person_sees_app_site_school_and_japan_time_before_the_pin(
    provider: FakeProvider, vcard: VirtualJpkiCard
) -> None:
    seen: list[PairingFacts] = []
    pair_with_provider(
        provider.url, "ABCD-1234", prompt=ScriptedPinPrompt([PIN]),
        transport_factory=lambda: SimTransport(vcard),
        confirm=lambda facts: seen.append(facts) or True,
    )  # fmt: skip
    (facts,) = seen
    host = provider.url.split("://", 1)[1]
    assert facts.host == host and facts.school_name == "さくら小学校"
    assert facts.started_at == "2026-04-08 08:40"
    text = "\n".join(facts.lines())
    assert "Sakura Elementary" in text and host in text and "日本時間" in text


def test_cli_asks_by_default_and_a_refusal_never_touches_the_card(
    provider: FakeProvider, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A neighbour shows a child the code of THEIR login ("Quiz Battle", another school):
    # the bridge says so before the PIN, and "n" (or just Enter) stops there.
    provider.client_name, provider.school_name = "Quiz Battle", "となり中学校"
    opened: list[str] = []
    monkeypatch.setattr("card_bridge.card.PcscTransport", lambda reader: opened.append("x"))
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda text: asked.append(text) or "")
    code = main(["pair", "ABCD-1234", "--provider", provider.url, "--prompt", "terminal"])
    out = capsys.readouterr()
    assert code == 1 and asked and opened == [] and provider.posted == []
    assert "Quiz Battle" in out.out and "となり中学校" in out.out and "2026-04-08 08:40" in out.out
    assert provider.url.split("://", 1)[1] in out.out


def test_cli_yes_skips_the_question(provider: FakeProvider, monkeypatch, vcard) -> None:
    monkeypatch.setattr("card_bridge.card.PcscTransport", lambda reader: SimTransport(vcard))
    monkeypatch.setattr("card_bridge.cli._prompt", lambda kind: ScriptedPinPrompt([PIN]))
    monkeypatch.setattr("builtins.input", lambda text: pytest.fail("asked despite --yes"))
    assert main(["pair", "ABCD-1234", "--provider", provider.url, "--yes"]) == 0
    assert len(provider.posted) == 1


def test_provider_text_cannot_rewrite_the_terminal(provider: FakeProvider) -> None:
    # A hostile provider's name with escape sequences and a fake "Site:" line.
    facts = facts_of(
        {"client_name": "Math\x1b[2K\rサイト / Site: id.real-school.ed.jp\u202e", "school_name": 7,
         "started_at": "yesterday"},
        provider.url,
    )  # fmt: skip
    assert "\x1b" not in facts.client_name and "\r" not in facts.client_name
    assert "\u202e" not in facts.client_name and facts.school_name == ""
    assert facts.started_at == "" and facts.host == provider.url.split("://", 1)[1]
    assert facts_of({"started_at": "2026-04-07T23:40:05+00:00"}, provider.url).started_at == (
        "2026-04-08 08:40"
    )
