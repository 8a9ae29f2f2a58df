"""The bridge's own page (http://127.0.0.1:<port>/) is a page of the student's journey: the
child types the tablet's code there and says whether the sign-in is theirs. Its Japanese
follows the provider's pages (tests/i18n/test_furigana.py): furigana on kanji beyond the
4th grade, full-width punctuation, and 「〜してね」, in every state the page can show."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from card_bridge import errors, local_page
from card_bridge.card import PcscStatus
from card_bridge.events import EventLog
from card_bridge.pair import PairingError, PairingFacts, PairingRequest
from card_bridge.server import BridgeConfig
from tests.i18n.visible_text import HALF_WIDTH_AFTER_JAPANESE, known_kanji, read

PROVIDER = "https://id.example.ed.jp"
STATUSES = (PcscStatus("unavailable"), PcscStatus("ok"), PcscStatus("ok", ["Reader"]),
            PcscStatus("ok", ["Reader"], ["Reader"]))


def _every_error() -> list[errors.CardError]:
    found, todo = [], [errors.CardError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls is not errors.WrongPin:
            found.append(cls())
    return [*found, errors.WrongPin(2), errors.WrongPin(1)]


def _request() -> PairingRequest:
    facts = PairingFacts("さんすうドリル", PROVIDER, "id.example.ed.jp", "さくら小学校",
                         "2026-04-08 08:40")
    return PairingRequest(PROVIDER + "/pair/x", PROVIDER, "c" * 43, facts)


@pytest.fixture
def pages(monkeypatch) -> Iterator[list[tuple[str, str]]]:
    with open(os.devnull, "w") as quiet:  # noqa: PTH123 - the event log's stream
        status = iter(STATUSES)
        config = BridgeConfig.build([PROVIDER], status_fn=lambda: next(status),
                                    events=EventLog(stream=quiet, keep=50))
        shown = [(f"home ({s.pcsc}, {len(s.readers)} readers)", local_page.home(config))
                 for s in STATUSES[:-1]]
        events = config.events
        events.waiting_for_pin("さんすうドリル")
        events.pin_accepted()
        events.signed("さんすうドリル")
        events.signed_in("さんすうドリル")
        events.pairing_failed("the provider said no")
        for error in _every_error():
            events.failed(error)
        shown.append(("home with every event", local_page.home(config)))
        request = _request()
        shown.append(("confirm", local_page.confirm_page(config, "k", request)))
        shown.append(("refused", local_page.refusal_page("another site")))

        def refuse(*args, **kwargs):
            raise PairingError("no such code")

        def wrong_pin(*args, **kwargs):
            raise errors.WrongPin(2)

        monkeypatch.setattr(local_page, "fetch_pairing", refuse)
        monkeypatch.setattr(local_page, "complete_pairing", wrong_pin)
        config.status_fn = lambda: STATUSES[-1]
        for name, fields in (("wrong code", {"provider": PROVIDER, "code": "ABCD"}),
                             ("another provider", {"provider": "https://evil.example"})):
            shown.append((name, local_page.submit_code(config, fields).body))
        shown.append(("too late", local_page.confirm(config, {"pending": "gone"}, list).body))
        key = config.page.hold(request)
        shown.append(("wrong PIN", local_page.confirm(
            config, {"pending": key, "answer": "yes"}, list).body))
        with config._op_lock:
            shown.append(("waiting for the PIN", local_page.home(config)))
        yield shown


def test_kanji_beyond_the_4th_grade_have_furigana(pages):
    known = known_kanji()
    wrong = [f"{name}: {found}" for name, html in pages for found in
             read(html).hard_kanji(known) + read(html).problems]
    assert not wrong, "\n".join(sorted(set(wrong)))
    assert any("<ruby>" in html for _, html in pages)


def test_japanese_punctuation_and_one_register(pages):
    lines = [(name, line) for name, html in pages for line in read(html).text().splitlines()]
    assert any("てね" in line for _, line in lines), "is the page being read?"
    wrong = sorted({f"{name}: {line!r}" for name, line in lines
                    if HALF_WIDTH_AFTER_JAPANESE.search(line) or "ください" in line})
    assert not wrong, "\n".join(wrong)
