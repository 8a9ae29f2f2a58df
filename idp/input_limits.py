"""The one size and depth limit for every JSON body the provider reads (registration, admin
API, card verify, pairing), and the strict reading of an HTTP Basic ``Authorization`` header.

The limits are enforced in :class:`BoundedRequest` (the app's request class), so every
``request.get_json()`` — with ``force`` or ``silent`` too — goes through them, and
``/api/openapi.json`` states the same constants.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote

from flask import Request
from werkzeug.exceptions import BadRequest

# Generous for any metadata a client sends (a JWKS of a few keys, a card's certificate and
# signature), far below what could tie up a worker.
JSON_MAX_BYTES = 64 * 1024
# Registration metadata nests 4 deep ({"jwks": {"keys": [{"x5c": [...]}]}}).
JSON_MAX_DEPTH = 16

# A string runs to its closing quote or, unterminated, to the end of the body: a quote that
# never closes must not make every later quote rescan the rest (quadratic time on 64 KiB of
# '"\\' pairs). Possessive quantifiers: no backtracking either.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.|\\\Z)*+(?:"|\Z)', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes) -> int:
    """How deeply arrays/objects nest in ``raw``, without parsing it (so without recursion:
    Python's json module raises RecursionError, not ValueError, on very deep input)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


def json_body_problem(raw: bytes) -> str | None:
    """Why a JSON body is refused before parsing, or None when it is within the limits."""
    if len(raw) > JSON_MAX_BYTES:
        return f"the JSON body is larger than {JSON_MAX_BYTES} bytes"
    if json_depth(raw) > JSON_MAX_DEPTH:
        return f"the JSON body nests deeper than {JSON_MAX_DEPTH} levels"
    return None


#: The one refusal of a U+0000 in a request (idp.app's input guard, and JSON read here).
NUL_REFUSAL = "the request contains a NUL (U+0000) character"


def urlencoded_has_nul(raw: bytes) -> bool:
    """Whether a query string or urlencoded body holds U+0000, looked at as sent: there it
    can only be ``%00`` (an escape is two hex digits: 00 has no other spelling) or the byte."""
    return b"%00" in raw or b"\x00" in raw


def json_has_nul(raw: bytes) -> bool:
    """Whether a JSON body holds U+0000: JSON writes it as an escape, or carries the byte."""
    return b"\\u0000" in raw or b"\x00" in raw


class BoundedRequest(Request):
    """Flask's request with the JSON limits applied to every parse: too large or too deep
    is a 400 naming the limit, whatever ``silent`` says (silence would hide why). A body
    parsed as JSON whatever its type (``force``) is refused for a NUL like a JSON one
    (the input guard sees only what says it is JSON)."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
        if force or self.is_json:
            raw = self.get_data(cache=True)
            problem = json_body_problem(raw)
            if problem is not None:
                raise BadRequest(problem)
            if json_has_nul(raw):
                raise BadRequest(NUL_REFUSAL)
        return super().get_json(force=force, silent=silent, cache=cache)


class MalformedBasic(ValueError):
    """An ``Authorization: Basic`` header that carries no usable client credentials."""


def parse_basic(header: str) -> tuple[str, str]:
    """``Basic base64(client_id:secret)`` strictly (RFC 7617, RFC 6749 §2.3.1): valid
    base64, UTF-8, a colon; each part form-url-decoded. Raises :class:`MalformedBasic`."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise MalformedBasic("not the Basic scheme")
    try:
        decoded = base64.b64decode(token.strip().encode("ascii"), validate=True)
        text = decoded.decode("utf-8")
    except (UnicodeError, binascii.Error) as exc:
        raise MalformedBasic("the Basic credentials are not base64 of UTF-8 text") from exc
    if ":" not in text:
        raise MalformedBasic("the Basic credentials have no ':' between id and secret")
    client_id, secret = text.split(":", 1)
    try:
        return unquote(client_id, errors="strict"), unquote(secret, errors="strict")
    except UnicodeError as exc:
        raise MalformedBasic("a %-escape in the Basic credentials is not UTF-8") from exc
