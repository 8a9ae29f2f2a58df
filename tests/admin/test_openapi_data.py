"""The admin API's OpenAPI document is data (``idp/admin/openapi.json``): every
``/api/admin`` route is in it with its methods and nothing else is, and the bounds and
vocabularies the code decides are filled in from the code's constants, never copied."""

from __future__ import annotations

import json
import re

import pytest

from idp.admin.openapi import DOCUMENT, fill, openapi_document
from idp.clients.auth_methods import AUTH_METHODS
from idp.clients.registry import ID_TOKEN_ALGS
from idp.input_limits import JSON_MAX_BYTES, JSON_MAX_DEPTH
from idp.scopes import SUPPORTED_SCOPES
from idp.signin.context import ACR_LEVELS

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _routes(app) -> dict[str, set[str]]:
    """The Flask url_map's /api/admin routes as OpenAPI paths (``<x>`` → ``{x}``)."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/admin"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes.setdefault(path, set()).update(rule.methods - IGNORED_METHODS)
    return routes


def _documented(doc) -> dict[str, set[str]]:
    return {path: {m.upper() for m in item if m != "parameters"}
            for path, item in doc["paths"].items() if path.startswith("/api/admin")}


def test_every_admin_api_route_is_documented_with_its_methods_and_vice_versa(app, client):
    doc = client.get("/api/openapi.json").get_json()
    routes, documented = _routes(app), _documented(doc)
    assert len(routes) >= 20
    missing = {p: sorted(m - documented.get(p, set())) for p, m in routes.items()
               if m - documented.get(p, set())}
    stale = {p: sorted(m - routes.get(p, set())) for p, m in documented.items()
             if m - routes.get(p, set())}
    assert missing == {}, f"routes not in openapi.json: {missing}"
    assert stale == {}, f"openapi.json operations with no route: {stale}"
    assert set(doc["paths"]) == set(documented)  # nothing documented outside /api/admin


def test_the_document_is_a_data_file_and_the_code_fills_in_its_own_constants(client):
    raw = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    assert raw["openapi"] == "3.1.0" and len(raw["paths"]) >= 20
    # The data file names the code's values; it does not copy them.
    assert "${auth_methods}" in DOCUMENT.read_text(encoding="utf-8")
    served = client.get("/api/openapi.json")
    doc = served.get_json()
    assert "${" not in served.get_data(as_text=True)
    metadata = doc["components"]["schemas"]["ClientMetadata"]["properties"]
    assert metadata["token_endpoint_auth_method"]["enum"] == list(AUTH_METHODS)
    assert metadata["id_token_signed_response_alg"]["enum"] == list(ID_TOKEN_ALGS)
    assert metadata["required_acr"]["enum"] == sorted(ACR_LEVELS)
    assert metadata["scope"]["description"].endswith(" ".join(SUPPORTED_SCOPES))
    client_schema = doc["components"]["schemas"]["Client"]["properties"]
    assert client_schema["token_endpoint_auth_method"]["enum"] == list(AUTH_METHODS)
    iat_body = doc["paths"]["/api/admin/initial-access-tokens"]["post"]["requestBody"]
    assert iat_body["content"]["application/json"]["schema"]["properties"][
        "allowed_scopes"]["items"]["enum"] == list(SUPPORTED_SCOPES)
    assert iat_body["x-max-bytes"] == JSON_MAX_BYTES
    assert iat_body["x-max-depth"] == JSON_MAX_DEPTH
    assert doc["servers"] == [{"url": "http://127.0.0.1:5000"}]


def test_a_new_method_in_the_code_reaches_the_document(monkeypatch):
    """The one list is read at load time: a method added to it is documented at once."""
    monkeypatch.setattr("idp.admin.openapi.AUTH_METHODS", [*AUTH_METHODS, "client_secret_jwt"])
    doc = openapi_document("https://idp.example.jp")
    enum = doc["components"]["schemas"]["ClientMetadata"]["properties"][
        "token_endpoint_auth_method"]["enum"]
    assert enum[-1] == "client_secret_jwt"
    assert doc["servers"] == [{"url": "https://idp.example.jp"}]


def test_placeholders_fill_typed_values_and_an_unknown_one_is_an_error():
    values = {"n": 7, "words": ["a", "b"]}
    assert fill({"x": "${n}", "y": ["${words}"], "z": "at most ${n}: ${words}", "p": "^a$"},
                values) == {"x": 7, "y": [["a", "b"]], "z": "at most 7: a b", "p": "^a$"}
    with pytest.raises(ValueError, match="unknown placeholder"):
        fill({"x": ["ok", "${nope}"]}, values)


def test_a_forged_host_does_not_change_the_documents_server(client):
    """A hostile network neighbour (or a poisoned cache in front of the provider) cannot
    point API clients at another host: the server URL is the configured issuer."""
    for headers in ({"Host": "evil.example"}, {"X-Forwarded-Host": "evil.example",
                                               "X-Forwarded-Proto": "https"}):
        response = client.get("/api/openapi.json", headers=headers)
        assert response.status_code == 200
        assert response.get_json()["servers"] == [{"url": "http://127.0.0.1:5000"}]
        assert "evil.example" not in response.get_data(as_text=True)


def test_the_document_cannot_be_changed_through_the_api(client):
    """Only GET is served; the document is read-only data for any caller."""
    before = client.get("/api/openapi.json").get_json()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = client.open("/api/openapi.json", method=method, json={"paths": {}})
        assert response.status_code == 405, method
    assert client.get("/api/openapi.json").get_json() == before
