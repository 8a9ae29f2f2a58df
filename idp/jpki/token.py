"""The card token a bridge posts, dispatched on its ``format`` to one card format.

Like web-eid's validator factory: :data:`FORMATS` maps each ``format`` string to a
:class:`~idp.jpki.formats.fields.CardFormat` (parser + signature check).  A token whose
``format`` is missing, not a string or not registered is ``CardError("invalid_request")``;
the formats themselves live in :mod:`idp.jpki.formats`, one module each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from idp.jpki.formats import jpki_auth
from idp.jpki.formats.fields import CardFormat, CardToken, invalid

#: The one registry of card token formats.  A new format is one line here.
FORMATS: Final[dict[str, CardFormat]] = {fmt.name: fmt for fmt in (jpki_auth.FORMAT,)}
MAX_FORMAT_CHARS: Final = 64


def format_of(name: str, formats: Mapping[str, CardFormat] = FORMATS) -> CardFormat:
    """The registered format called ``name``, or ``CardError("invalid_request")``."""
    found = formats.get(name)
    if found is None:
        expected = ", ".join(repr(n) for n in sorted(formats))
        raise invalid(f"unsupported token format (expected one of {expected})")
    return found


def parse_token(data: Any, formats: Mapping[str, CardFormat] = FORMATS) -> CardToken:
    """Check the decoded JSON ``data`` and return a :class:`CardToken` of its format.

    Only ``format`` is read here (a short string, or the token is refused before any other
    field is looked at); everything else is the format's own parser's business.
    """
    if not isinstance(data, dict):
        raise invalid("token must be a JSON object")
    if "format" not in data:
        raise invalid("token lacks format")
    name = data["format"]
    if not isinstance(name, str) or not 0 < len(name) <= MAX_FORMAT_CHARS:
        raise invalid("token format must be a short string")
    return format_of(name, formats).parse(data)


__all__ = ["FORMATS", "CardFormat", "CardToken", "format_of", "parse_token"]
