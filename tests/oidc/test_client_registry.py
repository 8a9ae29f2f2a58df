"""Issue 9 (clients): one home for the client registry and ONE list of client-auth methods.

The list in idp.clients.auth_methods is what discovery publishes, what validation accepts,
what the CLI, the admin form and the OpenAPI document offer and what Authlib checks; the
protocol never reaches into the admin area for client rules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from idp.clients.auth_methods import ASSERTION_METHODS, AUTH_METHODS, SECRET_METHODS

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_protocol_never_imports_admin():
    for path in (ROOT / "idp" / "oidc").glob("*.py"):
        bad = {m for m in _imports(path) if m == "idp.admin" or m.startswith("idp.admin.")}
        assert not bad, f"{path.name} imports {bad}"


def test_auth_method_names_are_written_out_once():
    """A method name as a string literal anywhere else in idp/ is a second list."""
    for path in (ROOT / "idp").rglob("*.py"):
        if path.name in ("auth_methods.py", "client_auth.py"):  # the list; each verifier's name
            continue
        literals = {n.value for n in ast.walk(ast.parse(path.read_text()))
                    if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not literals & {"client_secret_post", "client_secret_jwt", "private_key_jwt"}, \
            path


def test_every_reader_uses_the_one_list(app, client):
    from idp.admin.forms import ClientForm
    from idp.admin.openapi import openapi_document
    from idp.cli import client_create

    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["token_endpoint_auth_methods_supported"] == AUTH_METHODS
    assert meta["revocation_endpoint_auth_methods_supported"] == AUTH_METHODS
    assert meta["introspection_endpoint_auth_methods_supported"] == [
        m for m in AUTH_METHODS if m != "none"]
    option = next(p for p in client_create.params if p.name == "auth_method")
    assert list(option.type.choices) == AUTH_METHODS
    with app.test_request_context():
        form = ClientForm(meta={"csrf": False})
        assert list(form.token_endpoint_auth_method.choices) == AUTH_METHODS
    doc = openapi_document("https://idp.example.test")
    assert f'"enum": {AUTH_METHODS!r}'.replace("'", '"') in __import__("json").dumps(doc)
    server = app.extensions["mynagate.oauth2"]
    registered = server._client_auth._methods  # Authlib's registry of verifiers
    assert set(AUTH_METHODS) <= set(registered)
    assert set(ASSERTION_METHODS) == {"client_secret_jwt", "private_key_jwt"}


@pytest.mark.parametrize("method", ["none", "private_key_jwt"])
def test_a_client_without_secret_gets_none_and_cannot_rotate_one(svc, make_rp, method):
    """Abuse: someone holding an admin page of a public or key-based app tries to mint it a
    secret (which would let a copied secret stand in for the app's key)."""
    from joserfc.jwk import RSAKey

    from idp.clients import registry
    from idp.store.models import Client

    jwks = {"keys": [RSAKey.generate_key(2048).as_dict(private=False)]}
    rp = make_rp(auth_method=method, jwks=jwks if method == "private_key_jwt" else None)
    assert method not in SECRET_METHODS and rp.client_secret is None
    with svc.db.session() as db:
        row = db.get(Client, rp.client_id)
        assert row.client_secret_hash is None
        with pytest.raises(registry.ClientMetadataError):
            registry.rotate(db, row, actor="test")
