"""Pairing: sign in on a tablet (or any device without a reader) with the card on this PC.

The tablet shows a short code; the person runs `card-bridge pair CODE --provider URL` here.

Contract with the provider (the provider side is implemented separately):
  GET  {provider}/login/card/pair/{code}
       -> 200 {"challenge": <base64url, >=43>, "origin": <provider origin>, "client_name": str}
  POST {provider}/login/card/pair/{code}   Content-Type: application/json
       body: the token of card_bridge.token.build_token
       -> 2xx (JSON or empty) on success; 4xx/5xx {"error": ..., "error_description": ...}

The bridge refuses to sign for any origin other than the provider URL's own origin: a
look-alike "provider" must not be able to relay the real site's challenge through a
victim's card.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from card_bridge import __version__
from card_bridge.origins import is_valid_challenge, normalize_origin
from card_bridge.pin import PinPrompt

PAIR_CODE = re.compile(r"[A-Za-z0-9-]{4,64}")
MAX_RESPONSE = 64 * 1024
TIMEOUT = 15.0


class PairingError(Exception):
    """A problem with the provider or the code (not with the card)."""


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


# ========================================================================================
# PAIRING ENTRY POINT (bridge side of the tablet flow)
# ========================================================================================
def pair_with_provider(
    provider: str,
    code: str,
    *,
    prompt: PinPrompt,
    transport_factory: Callable[[], Any],
    confirm: Callable[[str, str], bool] | None = None,
    version: str = __version__,
) -> Any:
    """Fetch the pairing request, ask the person, sign with the card, post the token.

    `confirm(client_name, origin)` is asked before the card is touched (None = the PIN
    window, which names the site and has Cancel, is the confirmation). Returns the
    provider's JSON answer (or None). Raises PairingError or card_bridge.errors.CardError.
    """
    from card_bridge.errors import Cancelled
    from card_bridge.server import run_authentication

    url = pair_url(provider, code)
    expected_origin = provider_origin(provider)
    req = _http_json("GET", url)
    if not isinstance(req, dict):
        raise PairingError("provider sent no pairing request")
    challenge, origin = req.get("challenge"), req.get("origin")
    client_name = str(req.get("client_name") or "")[:100]
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
    if confirm is not None and not confirm(client_name, origin_n):
        raise Cancelled()
    host = origin_n.split("://", 1)[1]
    site = f"{client_name} ({host})" if client_name else host
    token = run_authentication(transport_factory(), prompt, site, origin_n, challenge, version)
    return _http_json("POST", url, token)
