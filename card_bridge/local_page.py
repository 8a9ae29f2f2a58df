"""The bridge's own page, http://127.0.0.1:<port>/: what the bridge did, and the box where
a person types the code a tablet shows (the pairing flow, card_bridge.pair).

Only the bridge's own page may use it; a web page on another site must not submit a code
(that would be a request to sign someone's tablet in with this PC's card) or read what the
bridge did:
- the Host header must be 127.0.0.1:<port> or localhost:<port> (checked by the server
  before anything here: DNS rebinding);
- a POST must carry an Origin equal to this page's own origin (`http://` + Host), and a
  Sec-Fetch-Site, when the browser sends one, of `same-origin`; a GET with a foreign Origin
  is refused too; no CORS header is ever sent, so other sites cannot read the page;
- every form carries a per-process random token (belt and braces behind the Origin check);
- the page cannot be framed (CSP frame-ancestors 'none', X-Frame-Options DENY), so it
  cannot be clicked through from another site;
- the PIN is still asked only in the bridge's window or terminal, never on this page.
"""

from __future__ import annotations

import hmac
import html
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from card_bridge.errors import CardError, WrongPin
from card_bridge.pair import PairingError, PairingRequest, complete_pairing, fetch_pairing

if TYPE_CHECKING:
    from card_bridge.server import BridgeConfig

MAX_FORM = 2048
PENDING_SECONDS = 120  # a provider's pairing code lives 2 minutes too
MAX_PENDING = 5
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it Chromium sends `Origin: null` on the page's own form posts,
    # which the Origin check must refuse. same-origin sends nothing to other sites anyway.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.6;line-break:strict}h1{font-size:1.4rem}.en{color:#444;font-size:.9rem}"
    "input[name=code]{font-size:1.6rem;letter-spacing:.15em;width:12ch}"
    "button{font-size:1.1rem;padding:.4rem 1.2rem}.error{color:#a00020}"
    "li.wrong_pin,li.error{color:#a00020}li.signed_in{color:#075e22}"
)


@dataclass
class PageState:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    _pending: dict[str, tuple[float, PairingRequest]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, request: PairingRequest) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._drop_old()
            while len(self._pending) >= MAX_PENDING:
                self._pending.pop(next(iter(self._pending)))
            self._pending[key] = (time.monotonic(), request)
        return key

    def take(self, key: str) -> PairingRequest | None:
        with self._lock:
            self._drop_old()
            held = self._pending.pop(key, None)
        return held[1] if held else None

    def _drop_old(self) -> None:
        now = time.monotonic()
        for key in [k for k, (at, _) in self._pending.items() if now - at > PENDING_SECONDS]:
            del self._pending[key]


@dataclass(frozen=True)
class Reply:
    status: int
    body: str = ""
    location: str | None = None


# The words on this page a 4th-grader has not learnt the kanji of, with their readings
# (the provider's pages carry furigana from their catalog; this page has none). Only here:
# the terminal and the PIN window cannot show furigana.
FURIGANA = {"暗証番号": "あんしょうばんごう", "再設定": "さいせってい", "閉": "と"}
_FURIGANA_WORDS = re.compile("|".join(map(re.escape, FURIGANA)))


def _ja(text: str) -> str:
    """Japanese for the page: escaped, with furigana on the words in FURIGANA."""
    return _FURIGANA_WORDS.sub(lambda m: f"<ruby>{m.group(0)}<rt>{FURIGANA[m.group(0)]}</rt>"
                               "</ruby>", html.escape(text))


def _both(ja: str, en: str) -> str:
    return f"{_ja(ja)}<br><span class=en lang=en>{html.escape(en)}</span>"


def _page(title_ja: str, title_en: str, body: str, refresh: bool = False) -> str:
    meta = '<meta http-equiv="refresh" content="2">' if refresh else ""
    return (
        f'<!doctype html><html lang="ja"><head><meta charset="utf-8">{meta}'
        f"<title>{html.escape(title_ja)} / {html.escape(title_en)}</title>"
        f'<meta name="viewport" content="width=device-width"><style>{STYLE}</style></head>'
        f"<body><h1>{_both(title_ja, title_en)}</h1>{body}</body></html>"
    )


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{name}" value="{html.escape(value)}">'


def _pair_form(config: BridgeConfig, error: str = "") -> str:
    origins = sorted(config.allowed_origins)
    if len(origins) == 1:
        where = _hidden("provider", origins[0]) + (
            f"<p>{_both('つなぐ先: ' + origins[0], 'Provider: ' + origins[0])}</p>"
        )
    else:
        options = "".join(f"<option>{html.escape(o)}</option>" for o in origins)
        where = (f'<p><label for="provider">{_both("つなぐ先", "Provider")}</label><br>'
                 f'<select id="provider" name="provider">{options}</select></p>')
    shown_error = f'<p class="error" role="alert">{error}</p>' if error else ""
    return (
        '<section><h2>' + _both("タブレットの番号を入れる", "Type the tablet's code") + "</h2>"
        "<p>" + _both("タブレットに出ている8文字の番号を入れて、「つぎへ」をおしてね。",
                      "Type the 8-character code the tablet shows, then press Next.") + "</p>"
        f'{shown_error}<form method="post" action="/pair">{_hidden("csrf", config.page.csrf)}'
        f"{where}"
        f'<p><label for="code">{_both("番号", "Code")}</label><br>'
        '<input id="code" name="code" required autocomplete="off" autocapitalize="characters"'
        ' maxlength="20" placeholder="ABCD-EFGH" autofocus></p>'
        f'<p><button type="submit">つぎへ / Next</button></p></form></section>'
    )


def _status_block(config: BridgeConfig) -> str:
    st = config.status()
    if st.pcsc != "ok":
        line = _both("カードリーダーの仕組み（PC/SC）がうごいていません。",
                     "PC/SC is not running (the Smart Card service / pcscd).")
    elif not st.readers:
        line = _both("カードリーダーが見つかりません。", "No card reader found.")
    elif not st.card:
        line = _both("カードリーダーはあります。カードはのっていません。",
                     f"Reader: {', '.join(st.readers)}. No card on it.")
    else:
        line = _both("カードがのっています。", f"Reader: {', '.join(st.readers)}. A card is on it.")
    return f'<p role="status">{line}</p>'


def _events_block(config: BridgeConfig) -> str:
    items = "".join(
        f'<li class="{html.escape(e.kind)}"><time>{e.clock}</time> {_both(e.ja, e.en)}</li>'
        for e in config.events.recent()
    )
    empty = "<p>" + _both("まだなにもしていません。", "Nothing happened yet.") + "</p>"
    return ("<section><h2>" + _both("さいきんのできごと", "What happened") + "</h2>"
            + (f'<ul aria-live="polite">{items}</ul>' if items else empty) + "</section>")


def home(config: BridgeConfig, error: str = "") -> str:
    busy = config._op_lock.locked()
    body = _status_block(config)
    if busy:
        body += "<p><strong>" + _both(
            "カードアプリのまどで暗証番号を入れてね。",
            "Type the PIN in the card bridge's window.") + "</strong></p>"
    body += _pair_form(config, error) + _events_block(config)
    return _page("マイナゲート カードブリッジ", "Mynagate card bridge", body, refresh=busy)


def confirm_page(config: BridgeConfig, key: str, request: PairingRequest,
                 notice: str = "") -> str:
    facts = "".join(f"<li>{html.escape(line)}</li>" for line in request.facts.lines())
    body = (
        (f'<p class="error" role="alert">{notice}</p>' if notice else "") +
        "<p><strong>" + _both("このサインインを待っているのは、あなたのタブレットですか？",
                              "Is this the sign-in waiting on YOUR tablet?") + "</strong></p>"
        f"<ul>{facts}</ul>"
        "<p>" + _both("ちがうときや、わからないときは「いいえ」をおしてね。",
                      "If it is not yours, or you are not sure, press No.") + "</p>"
        f'<form method="post" action="/pair/confirm">{_hidden("csrf", config.page.csrf)}'
        f'{_hidden("pending", key)}'
        '<button type="submit" name="answer" value="no" autofocus>いいえ / No</button> '
        '<button type="submit" name="answer" value="yes">はい、カードでサインインする / Yes'
        "</button></form>"
    )
    return _page("たしかめてね", "Please check", body)


def refusal_page(why: str) -> str:
    return _page("このページは使えません", "Refused",
                 "<p>" + _both("カードブリッジのページは、ほかのサイトからではなく、このパソコンで"
                               "じかにひらいてね。",
                               why) + "</p>")


# -- requests ---------------------------------------------------------------------------
def refusal_of_get(headers: Any, own_origin: str) -> str | None:
    origin = headers.get("Origin")
    if origin is not None and origin.lower() != own_origin:
        return "another site may not read this page"
    return None


def refusal_of_post(headers: Any, own_origin: str) -> str | None:
    """Why a form POST is not the bridge's own page, or None when it is."""
    if (headers.get("Origin") or "").lower() != own_origin:
        return "only the bridge's own page may send this form"
    fetch_site = headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.lower() != "same-origin":
        return "only the bridge's own page may send this form"
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return "not a form"
    return None


def parse_form(raw: bytes, config: BridgeConfig) -> dict[str, str] | None:
    """The form's fields, or None when its token is not this bridge's."""
    try:
        fields = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), max_num_fields=8).items()}
    except (UnicodeDecodeError, ValueError):
        return None
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not False).
    if not hmac.compare_digest(fields.get("csrf", "").encode(), config.page.csrf.encode()):
        return None
    return fields


def submit_code(config: BridgeConfig, fields: dict[str, str]) -> Reply:
    provider = fields.get("provider", "")
    if provider not in config.allowed_origins:
        # Only a provider this bridge was started for (--allow-origin): a look-alike site
        # must not be able to send its own "pairing" through this page.
        return Reply(400, home(config, _both("そのつなぐ先は使えません。",
                                             "That provider is not allowed.")))
    code = "".join(fields.get("code", "").split()).upper()
    try:
        request = fetch_pairing(provider, code)
    except PairingError as exc:
        message = _both("その番号ではサインインできませんでした。タブレットの番号をたしかめてね。",
                        str(exc))
        return Reply(400, home(config, message))
    return Reply(200, confirm_page(config, config.page.hold(request), request))


def confirm(config: BridgeConfig, fields: dict[str, str],
            transport_factory: Callable[[], Any]) -> Reply:
    request = config.page.take(fields.get("pending", ""))
    if request is None:
        return Reply(400, home(config, _both("時間がすぎました。もう一度番号を入れてね。",
                                             "That took too long. Type the code again.")))
    if fields.get("answer") != "yes":
        config.events.add("cancelled", request.site.ja_then("のサインインをやめました"),
                          f"Sign-in for {request.site.en} was not confirmed")
        return Reply(303, location="/")
    if not config._op_lock.acquire(blocking=False):
        return Reply(409, home(config, _both("ほかのサインインのとちゅうです。",
                                             "Another sign-in is in progress.")))
    try:
        complete_pairing(request, prompt=config.prompt(), transport_factory=transport_factory,
                         version=config.version, events=config.events)
    except WrongPin as exc:
        # Nothing was sent to the provider: the same sign-in can be tried again at once.
        notice = _both(f"暗証番号がちがいます。のこり {exc.tries_left} 回です。もう一度ためすときは"
                       "「はい」をおしてね。",
                       f"Wrong PIN: {exc.tries_left} tries left. Press Yes to try again.")
        return Reply(200, confirm_page(config, config.page.hold(request), request, notice))
    except (PairingError, CardError):
        pass  # already told on the terminal and in the list of events
    finally:
        config._op_lock.release()
    return Reply(303, location="/")
