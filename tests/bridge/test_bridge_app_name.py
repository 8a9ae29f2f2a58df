"""The page may name the app being signed in to (`app` in POST /v1/authenticate): the bridge
shows it in its PIN window before the PIN is typed and in what it says afterwards, always
before the origin it checked itself. The name is display only: never signed, never trusted
(docs/card-bridge-protocol.md)."""

from __future__ import annotations

import base64
import io

import pytest
from bridge_helpers import PIN, PkiCard, SimTransport
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from test_bridge_outcome import WindowPrompt
from test_bridge_server import CHALLENGE, ORIGIN, auth, request, serve  # noqa: F401 - serve is a fixture

from card_bridge.card import PcscStatus
from card_bridge.events import EventLog
from card_bridge.origins import APP_NAME_MAX, Site, clean_app_name
from card_bridge.pin import TerminalPinPrompt
from card_bridge.server import BridgeConfig
from card_bridge.sim import VirtualJpkiCard
from card_bridge.token import signed_message
from tests.i18n.visible_text import HALF_WIDTH_AFTER_JAPANESE

HOST = "id.example.ed.jp"
OTHER = "https://other.example.jp"  # another allowed origin, not the provider


@pytest.fixture
def config(vcard: VirtualJpkiCard) -> BridgeConfig:
    return BridgeConfig.build(
        [ORIGIN, OTHER],
        pin_prompt=WindowPrompt([PIN]),
        transport_factory=lambda: SimTransport(vcard),
        status_fn=lambda: PcscStatus("ok", ["Sim Reader"], ["Sim Reader"]),
        events=EventLog(stream=io.StringIO()),
    )


def printed(config: BridgeConfig) -> str:
    return config.events.stream.getvalue()  # type: ignore[union-attr]


def test_the_pin_window_and_the_outcome_name_the_app_before_the_origin(serve, config) -> None:  # noqa: F811
    status, _, body = auth(serve(config), app="算数ドリル")
    assert status == 200 and body["format"] == "jpki-auth:1"
    prompt = config.pin_prompt
    assert isinstance(prompt, WindowPrompt)
    (site, tries, last), = prompt.asked
    assert site == Site(HOST, "算数ドリル") and (tries, last) == (3, False)
    assert site.ja_then("がサインインを求めています") == \
        "「算数ドリル」（id.example.ed.jp から）がサインインを求めています"
    assert site.en == "算数ドリル (from id.example.ed.jp)"
    (ja, en, bad), = prompt.told
    assert not bad and ja == ("暗証番号OK。「算数ドリル」（https://id.example.ed.jp から）"
                              "にサインインのしるしをわたしました")
    assert en == "PIN accepted. Signed in to 算数ドリル (from https://id.example.ed.jp): " \
        "the card's signature was handed over"
    assert not HALF_WIDTH_AFTER_JAPANESE.search(ja)
    terminal = printed(config)
    assert "「算数ドリル」（id.example.ed.jp から）のために暗証番号を待っています" in terminal
    assert "「算数ドリル」（https://id.example.ed.jp から）にサインインのしるし" in terminal


def test_an_old_page_without_app_names_the_origin_as_before(serve, config) -> None:  # noqa: F811
    status, _, _ = auth(serve(config))
    assert status == 200
    assert config.pin_prompt.asked[0][0] == Site(HOST)  # type: ignore[union-attr]
    assert f"{ORIGIN} にサインインのしるしをわたしました" in printed(config)


def test_unknown_members_are_ignored_not_refused(serve, config) -> None:  # noqa: F811
    # What keeps a newer page working with an older bridge: `app` was once unknown too.
    status, _, body = auth(serve(config), future={"anything": 1}, app="算数ドリル")
    assert status == 200 and body["format"] == "jpki-auth:1"


@pytest.mark.parametrize("app", [
    "", "   ", 42, None, ["算数ドリル"], {"ja": "算数ドリル"},
    "あ" * (APP_NAME_MAX + 1),
    "\u202e" + "あ" * 500,
])
def test_a_name_not_fit_to_show_is_ignored_and_the_sign_in_goes_on(serve, config,  # noqa: F811
                                                                    app) -> None:
    status, _, _ = auth(serve(config), app=app)
    assert status == 200
    assert config.pin_prompt.asked[0][0] == Site(HOST)  # type: ignore[union-attr]


def test_control_and_bidi_characters_are_taken_out() -> None:
    hostile = ("\x1b[2J\x1b[31m算数\u202eルリド\u202c\u2066x\u2069"
               "\u2067\u2068\u202a\u202b\u202d\n\tドリル\x07")
    # What is left of an escape is harmless text; the line break and tab are a space.
    assert clean_app_name(hostile) == "[2J[31m算数ルリドx ドリル"
    assert clean_app_name("あ" * APP_NAME_MAX) == "あ" * APP_NAME_MAX
    # Counted after the cleaning: escapes do not push a fine name over the limit ...
    assert clean_app_name("\x1b" * 100 + "算数ドリル") == "算数ドリル"
    # ... and a long one is dropped, not cut (a cut could hide what tells two names apart).
    assert clean_app_name("あ" * (APP_NAME_MAX + 1)) == ""


def test_the_terminal_prompt_names_the_app(monkeypatch) -> None:
    monkeypatch.setattr("getpass.getpass", lambda _prompt: PIN)
    out = io.StringIO()
    assert TerminalPinPrompt(out).ask(Site(HOST, "算数ドリル"), 3, False) == PIN
    assert "「算数ドリル」（id.example.ed.jp から）がサインインを求めています" in out.getvalue()
    assert "算数ドリル (from id.example.ed.jp) wants you to sign in" in out.getvalue()


def test_another_origin_borrowing_the_apps_name_is_shown_and_signed_as_itself(
        serve, config, test_card: PkiCard) -> None:  # noqa: F811
    """The abuse case: a page of another allowed origin says it is the provider's app. The
    bridge names it by its own origin, and the card signs that origin: the token is useless
    at the provider."""
    spoof = f"算数ドリル（{HOST} から）"  # a name dressed up as the real thing
    status, _, token = auth(serve(config), origin=OTHER, app=spoof)
    assert status == 200
    site = config.pin_prompt.asked[0][0]  # type: ignore[union-attr]
    assert site.where == "other.example.jp" and site.app == spoof
    assert site.ja.endswith("（other.example.jp から）")
    assert site.en.endswith("(from other.example.jp)")
    assert f"（{OTHER} から）にサインインのしるしをわたしました" in printed(config)
    signature = base64.b64decode(token["signature"])
    key = test_card.public_key
    key.verify(signature, signed_message(OTHER, CHALLENGE), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        key.verify(signature, signed_message(ORIGIN, CHALLENGE), padding.PKCS1v15(),
                   hashes.SHA256())


def test_a_page_cannot_claim_the_providers_origin_with_a_name(serve, config) -> None:  # noqa: F811
    # The name changes nothing about the origin check: the body's origin must be the caller's.
    body = {"challenge": CHALLENGE, "origin": ORIGIN, "app": "算数ドリル"}
    status, _, answer = request(serve(config), "POST", "/v1/authenticate", body,
                                {"Origin": OTHER, "Content-Type": "application/json"})
    assert status == 403 and answer["error"] == "origin_mismatch"
    assert config.pin_prompt.asked == []  # type: ignore[union-attr]
