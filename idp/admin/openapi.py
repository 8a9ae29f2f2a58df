"""The OpenAPI 3.1 description of the admin API (served at ``/api/openapi.json``).

The document is data: ``openapi.json`` next to this module. What the code decides — the JSON
body limits, the client-auth methods, the ID token algorithms, the acr values, the scopes, the
issuer — is written there as a ``${name}`` placeholder and filled in from the code's own
constants here, so the document cannot drift from them. A new operation is an entry in the
JSON file (``tests/admin/test_openapi_data.py`` checks it against the routes).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from idp.clients.auth_methods import AUTH_METHODS
from idp.clients.registry import ID_TOKEN_ALGS
from idp.input_limits import JSON_MAX_BYTES, JSON_MAX_DEPTH
from idp.scopes import SUPPORTED_SCOPES
from idp.signin.context import ACR_LEVELS

DOCUMENT = Path(__file__).with_name("openapi.json")
PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")


def constants(issuer: str) -> dict[str, Any]:
    """The values the placeholders name."""
    return {
        "issuer": issuer,
        "json_max_bytes": JSON_MAX_BYTES,
        "json_max_depth": JSON_MAX_DEPTH,
        "auth_methods": list(AUTH_METHODS),
        "id_token_algs": list(ID_TOKEN_ALGS),
        "acr_levels": sorted(ACR_LEVELS),
        "scopes": list(SUPPORTED_SCOPES),
    }


@cache
def template() -> dict[str, Any]:
    """The document as written in ``openapi.json``, placeholders and all (read once)."""
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


def fill(node: Any, values: dict[str, Any]) -> Any:
    """A copy of ``node`` with every placeholder replaced: a string that is exactly one
    placeholder takes the value itself (a list stays a list, a number a number); one inside
    a longer string takes its text (a list joined by spaces). An unknown name is an error,
    never a literal ``${...}`` in the served document."""
    if isinstance(node, dict):
        return {key: fill(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [fill(value, values) for value in node]
    if not isinstance(node, str):
        return node
    whole = PLACEHOLDER.fullmatch(node)
    if whole:
        return _value(values, whole.group(1))
    return PLACEHOLDER.sub(lambda match: _text(_value(values, match.group(1))), node)


def _value(values: dict[str, Any], name: str) -> Any:
    if name not in values:
        raise ValueError(f"openapi.json: unknown placeholder ${{{name}}}")
    return values[name]


def _text(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def openapi_document(issuer: str) -> dict[str, Any]:
    return fill(template(), constants(issuer))
