"""Pairing: sign in on a tablet (or any device without a reader) with the card on this PC.

The tablet shows a short code; the person types it into the bridge's local page
(http://127.0.0.1:47263/, card_bridge.local_page) or, in scripts, `card-bridge pair CODE
--provider URL`.

Contract with the provider (the provider side is implemented separately):
  GET  {provider}/login/card/pair/{code}
       -> 200 {"challenge": <base64url, >=43>, "origin": <provider origin>, "client_name": str,
               "school_name": str | null, "started_at": ISO 8601 (Japan time), ...}
  POST {provider}/login/card/pair/{code}   Content-Type: application/json
       body: the token of card_bridge.token.build_token
       -> 2xx (JSON or empty) on success; 4xx/5xx {"error": ..., "error_description": ...}

The bridge refuses to sign for any origin other than the provider URL's own origin: a
look-alike "provider" must not be able to relay the real site's challenge through a
victim's card.

Before the PIN, the person is shown whose login the code belongs to (the app, the provider
host, the school, when the login started, in Japan time) and asked to confirm: a neighbour who
shows a child a code for *their* login is caught here. The host shown is the one this bridge
talks to, never a name the provider sends; provider text is stripped of control characters
so it cannot rewrite the terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from card_bridge import __version__
from card_bridge.events import EventLog
from card_bridge.origins import Site, is_valid_challenge, normalize_origin
from card_bridge.pin import PinPrompt

PAIR_CODE = re.compile(r"[A-Za-z0-9-]{4,64}")
MAX_RESPONSE = 64 * 1024
TIMEOUT = 15.0


JST = dt.timezone(dt.timedelta(hours=9), "JST")


class PairingError(Exception):
    """A problem with the provider or the code (not with the card)."""


@dataclass(frozen=True)
class PairingFacts:
    """What the person confirms before the card is touched."""

    client_name: str
    origin: str
    host: str
    school_name: str
    started_at: str  # "2026-04-08 08:40" in Japan time, or "" when the provider sent none

    def lines(self) -> list[str]:
        unknown = "不明 / unknown"
        return [
            f"アプリ / App:      {self.client_name or unknown}",
            f"サイト / Site:     {self.host}",
            f"学校 / School:     {self.school_name or unknown}",
            f"開始 / Started:    {self.started_at + '（日本時間 / Japan time）' if self.started_at else unknown}",  # noqa: E501
        ]


def _text(value: object, limit: int = 100) -> str:
    """Provider text for display: no control or format characters (no terminal escapes)."""
    if not isinstance(value, str):
        return ""
    clean = "".join(c for c in value if unicodedata.category(c)[0] != "C")
    return " ".join(clean.split())[:limit]


def _japan_time(value: object) -> str:
    if not isinstance(value, str) or len(value) > 40:
        return ""
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return ""
    if when.tzinfo is None:
        return ""
    return when.astimezone(JST).strftime("%Y-%m-%d %H:%M")


def facts_of(req: dict[str, Any], origin: str) -> PairingFacts:
    return PairingFacts(
        client_name=_text(req.get("client_name")),
        origin=origin,
        host=origin.split("://", 1)[1],
        school_name=_text(req.get("school_name")),
        started_at=_japan_time(req.get("started_at")),
    )


def _http_json(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode("utf-8") if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - scheme checked
    req.add_header("Accept", "application/json")
    req.add_header("User-Agent", f"mynagate-card-bridge/{__version__}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310
            raw = resp.read(MAX_RESPONSE + 1)
    except urllib.error.HTTPError as exc:
        detail = ""
        try:
            err = json.loads(exc.read(MAX_RESPONSE) or b"{}")
            detail = err.get("error_description") or err.get("error") or ""
        except (ValueError, AttributeError):
            pass
        raise PairingError(f"provider answered {exc.code} {detail}".strip()) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise PairingError(f"cannot reach the provider: {exc}") from exc
    if len(raw) > MAX_RESPONSE:
        raise PairingError("provider response too large")
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise PairingError("provider did not answer JSON") from exc


def provider_origin(provider: str) -> str:
    p = urlsplit(provider)
    try:
        return normalize_origin(f"{p.scheme}://{p.netloc}")
    except ValueError as exc:
        raise PairingError("the provider URL must be https:// (http only for localhost)") from exc


def pair_url(provider: str, code: str) -> str:
    if not PAIR_CODE.fullmatch(code):
        raise PairingError("the pairing code is 4-64 letters, digits or dashes")
    provider_origin(provider)  # https (or http on localhost) only
    p = urlsplit(provider)
    if p.query or p.fragment:
        raise PairingError("the provider URL must not have a query or fragment")
    return f"{provider.rstrip('/')}/login/card/pair/{quote(code, safe='')}"


@dataclass(frozen=True)
class PairingRequest:
    """A pairing fetched from the provider, checked, not yet signed."""

    url: str
    origin: str
    challenge: str
    facts: PairingFacts

    @property
    def site(self) -> Site:
        return Site(self.facts.host, self.facts.client_name)


# ========================================================================================
# PAIRING ENTRY POINTS (bridge side of the tablet flow)
# ========================================================================================
def fetch_pairing(provider: str, code: str) -> PairingRequest:
    """GET the pairing for `code` and check it asks to sign for the provider itself."""
    url = pair_url(provider, code)
    expected_origin = provider_origin(provider)
    req = _http_json("GET", url)
    if not isinstance(req, dict):
        raise PairingError("provider sent no pairing request")
    challenge, origin = req.get("challenge"), req.get("origin")
    if not isinstance(origin, str):
        raise PairingError("provider sent no origin")
    try:
        origin_n = normalize_origin(origin)
    except ValueError as exc:
        raise PairingError(f"provider sent a bad origin: {origin!r}") from exc
    if origin_n != expected_origin:
        raise PairingError(
            f"provider asked to sign for {origin_n}, not for itself ({expected_origin})"
        )
    if not is_valid_challenge(challenge):
        raise PairingError("provider sent a malformed challenge")
    assert isinstance(challenge, str)
    return PairingRequest(url, origin_n, challenge, facts_of(req, origin_n))


def complete_pairing(
    request: PairingRequest,
    *,
    prompt: PinPrompt,
    transport_factory: Callable[[], Any],
    version: str = __version__,
    events: EventLog | None = None,
) -> Any:
    """PIN, signature, POST the token: after the person confirmed `request.facts`."""
    from card_bridge.server import run_authentication

    token = run_authentication(
        transport_factory(), prompt, request.site, request.origin, request.challenge, version,
        events,
    )
    try:
        answer = _http_json("POST", request.url, token)
    except PairingError as exc:
        if events is not None:
            events.pairing_failed(str(exc))
        raise
    if events is not None:
        events.signed_in(request.site)
    return answer


def pair_with_provider(
    provider: str,
    code: str,
    *,
    prompt: PinPrompt,
    transport_factory: Callable[[], Any],
    confirm: Callable[[PairingFacts], bool] | None = None,
    version: str = __version__,
    events: EventLog | None = None,
) -> Any:
    """Fetch the pairing request, ask the person, sign with the card, post the token.

    `confirm(facts)` is asked before the card is touched (None only for `--yes` scripts).
    Returns the provider's JSON answer (or None). Raises PairingError or
    card_bridge.errors.CardError.
    """
    from card_bridge.errors import Cancelled

    request = fetch_pairing(provider, code)
    if confirm is not None and not confirm(request.facts):
        raise Cancelled()
    return complete_pairing(
        request, prompt=prompt, transport_factory=transport_factory, version=version,
        events=events,
    )
