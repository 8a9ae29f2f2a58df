"""The bridge says what happened in its window too, not only on its terminal and its local
page: a Windows build has no console, and the child typed the PIN in the window. The words
(PIN accepted and signed in to which site, wrong PIN with the tries left, any other error)
are those of card_bridge.events; the Tk window itself is driven in test_bridge_tk.py."""

from __future__ import annotations

import io

import pytest
from bridge_helpers import PIN, SimTransport
from test_bridge_server import ORIGIN, auth, serve  # noqa: F401 - serve is a fixture

from card_bridge import errors
from card_bridge.card import PcscStatus
from card_bridge.events import EventLog, outcome_of
from card_bridge.pin import ScriptedPinPrompt
from card_bridge.server import BridgeConfig
from card_bridge.sim import VirtualJpkiCard
from tests.i18n.visible_text import HALF_WIDTH_AFTER_JAPANESE


class WindowPrompt(ScriptedPinPrompt):
    """A PIN window that records what it was told after the card work."""

    def __init__(self, answers: list[str | None]) -> None:
        super().__init__(answers)
        self.told: list[tuple[str, str, bool]] = []

    def tell(self, ja: str, en: str, bad: bool) -> None:
        self.told.append((ja, en, bad))


@pytest.fixture
def window_config(vcard: VirtualJpkiCard) -> BridgeConfig:
    return BridgeConfig.build(
        [ORIGIN],
        pin_prompt=WindowPrompt([]),
        transport_factory=lambda: SimTransport(vcard),
        status_fn=lambda: PcscStatus("ok", ["Sim Reader"], ["Sim Reader"]),
        events=EventLog(stream=io.StringIO()),
    )


def test_wrong_pin_then_the_right_one_are_told_in_the_window(serve, window_config,  # noqa: F811
                                                              vcard) -> None:
    prompt = window_config.pin_prompt
    assert isinstance(prompt, WindowPrompt)
    prompt.answers = ["0000", PIN]
    srv = serve(window_config)
    assert auth(srv)[2]["error"] == "wrong_pin"
    assert prompt.told == [("暗証番号がちがいます。のこり 2 回", "Wrong PIN: 2 tries left", True)]
    status, _, body = auth(srv)
    assert status == 200 and body["format"].startswith("jpki-auth")
    ja, en, bad = prompt.told[1]
    assert ja.startswith("暗証番号OK。") and ORIGIN in ja and not bad
    assert en.startswith("PIN accepted.") and ORIGIN in en
    # The terminal says the same, line by line.
    printed = window_config.events.stream.getvalue()  # type: ignore[union-attr]
    assert "暗証番号がちがいます。のこり 2 回 / Wrong PIN: 2 tries left" in printed
    assert "暗証番号OK / PIN accepted" in printed


def test_a_cancel_is_not_told_back(serve, window_config) -> None:  # noqa: F811
    # The person pressed Cancel themselves: a window saying so would only be in the way.
    srv = serve(window_config)
    assert auth(srv)[2]["error"] == "cancelled"
    assert window_config.pin_prompt.told == []  # type: ignore[union-attr]


def test_a_window_that_cannot_open_does_not_fail_the_sign_in(serve, window_config,  # noqa: F811
                                                             vcard) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("no display")

    window_config.pin_prompt.tell = broken  # type: ignore[union-attr]
    window_config.pin_prompt.answers = [PIN]  # type: ignore[union-attr]
    status, _, _ = auth(serve(window_config))
    assert status == 200


def test_every_outcome_has_japanese_first_and_full_width_punctuation() -> None:
    log = EventLog(stream=io.StringIO())
    found, todo = [], [errors.CardError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls not in (errors.WrongPin, errors.Cancelled):
            found.append(cls())
    for error in [*found, errors.WrongPin(2), errors.WrongPin(1)]:
        log.failed(error)
    log.signed("https://id.example.ed.jp")
    log.signed_in("Math Drill")  # an app's name is its own: here without kana
    outcomes = [outcome_of(event) for event in log.recent()]
    assert all(outcomes) and len(outcomes) > 8
    for outcome in outcomes:
        assert outcome is not None
        assert any("\u3040" <= c <= "\u30ff" for c in outcome.ja), outcome
        assert not any("\u3040" <= c <= "\u30ff" for c in outcome.en), outcome
        assert not HALF_WIDTH_AFTER_JAPANESE.search(outcome.ja), outcome
    newest = outcomes[0]
    assert newest is not None and newest.ja == "暗証番号OK。Math Drill にサインインしました"
    log.waiting_for_pin("さんすうドリル")
    log.pin_accepted()
    assert [outcome_of(event) for event in log.recent()[:2]] == [None, None]
