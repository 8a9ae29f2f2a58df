"""Pairwise subjects (OIDC Core §8.1) across three clients in two sectors, with the sector
document served over a real local HTTP server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.oidc.conftest import sign_in_tokens

SECTOR_URIS = ["https://b1.school-apps.test/cb", "https://b2.school-apps.test/cb",
               "https://b3.other-apps.test/cb"]


class _SectorServer:
    def __init__(self) -> None:
        self.documents: dict[str, tuple[int, bytes]] = {}
        documents = self.documents

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                status, body = documents.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, path: str, document, status: int = 200) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.documents[path] = (status, body)
        return self.base + path


@pytest.fixture(scope="module")
def sector_server():
    server = _SectorServer()
    yield server
    server.httpd.shutdown()


@pytest.fixture
def http_sectors(svc, monkeypatch):
    """Allow an http sector_identifier_uri (the local server) for this test only; the local
    server is on loopback, so it is put on the outbound allow-list too."""
    monkeypatch.setattr(svc.settings, "allow_http_sector_identifier", True)
    monkeypatch.setattr(svc.settings, "outbound_allow", ["127.0.0.1"])


@pytest.fixture
def three_clients(make_rp, sector_server, http_sectors):
    sector_uri = sector_server.serve("/sector.json", SECTOR_URIS)
    a = make_rp(host="math.example.test")
    b = make_rp(redirect_uris=[SECTOR_URIS[0]], sector_identifier_uri=sector_uri)
    c = make_rp(redirect_uris=SECTOR_URIS[1:], sector_identifier_uri=sector_uri)
    return a, b, c


def test_pairwise_three_clients_two_sectors(new_browser, three_clients, make_student,
                                            shared_student):
    a, b, c = three_clients
    assert a.sector == "math.example.test"
    assert b.sector == c.sector == "127.0.0.1"
    browser = new_browser()
    sub = {rp.client_id: sign_in_tokens(browser, rp, shared_student).claims["sub"]
           for rp in (a, b, c)}
    # Same sector, same sub; different sector, different sub.
    assert sub[b.client_id] == sub[c.client_id]
    assert sub[a.client_id] != sub[b.client_id]
    for value in sub.values():
        assert len(value) <= 255 and value.isascii()
        assert shared_student.id not in value
    # Stable across sign-ins (a new browser, a new session).
    later = new_browser()
    for rp in (a, b, c):
        assert sign_in_tokens(later, rp, shared_student, prompt="login").claims["sub"] == \
            sub[rp.client_id]
    # Another student gets other subs at the same clients.
    other = make_student()
    assert sign_in_tokens(new_browser(), a, other).claims["sub"] != sub[a.client_id]


def test_pairwise_sub_is_the_same_at_userinfo_and_introspection(browser, three_clients,
                                                               shared_student, client):
    from tests.oidc.conftest import basic_auth, userinfo

    _a, b, _c = three_clients
    tokens = sign_in_tokens(browser, b, shared_student)
    assert userinfo(client, tokens.body["access_token"]).get_json()["sub"] == \
        tokens.claims["sub"]
    introspected = client.post("/introspect", data={"token": tokens.body["access_token"]},
                               headers=basic_auth(b.client_id, b.client_secret)).get_json()
    assert introspected["sub"] == tokens.claims["sub"]


def _refused(make_rp, **fields):
    from idp.clients.registry import ClientMetadataError

    with pytest.raises(ClientMetadataError) as info:
        make_rp(**fields)
    assert info.value.code == "invalid_client_metadata"
    return str(info.value)


def test_redirect_uris_on_two_hosts_need_a_sector_identifier(make_rp):
    _refused(make_rp, redirect_uris=["https://one.example.test/cb",
                                     "https://two.example.test/cb"])


def test_sector_document_missing_a_redirect_uri_is_refused(make_rp, sector_server,
                                                           http_sectors):
    uri = sector_server.serve("/partial.json", SECTOR_URIS[:1])
    message = _refused(make_rp, redirect_uris=SECTOR_URIS[:2], sector_identifier_uri=uri)
    assert SECTOR_URIS[1] in message


@pytest.mark.parametrize("document,status", [
    ({"redirect_uris": SECTOR_URIS}, 200),  # an object, not an array
    (b"not json", 200),
    (SECTOR_URIS, 404),
    ([1, 2, 3], 200),
])
def test_bad_sector_documents_are_refused(make_rp, sector_server, http_sectors, document,
                                          status):
    uri = sector_server.serve(f"/bad-{status}-{len(str(document))}.json", document, status)
    _refused(make_rp, redirect_uris=SECTOR_URIS[:1], sector_identifier_uri=uri)


def test_http_sector_identifier_refused_by_default(make_rp, sector_server, svc):
    assert svc.settings.allow_http_sector_identifier is False
    uri = sector_server.serve("/ok.json", SECTOR_URIS)
    _refused(make_rp, redirect_uris=SECTOR_URIS[:1], sector_identifier_uri=uri)


def test_unreachable_sector_document_is_refused(make_rp, http_sectors):
    _refused(make_rp, redirect_uris=SECTOR_URIS[:1],
             sector_identifier_uri="http://127.0.0.1:9/sector.json")


def test_pairwise_core_properties():
    from idp.pairwise import pairwise_sub

    one = pairwise_sub("secret-0123456789abcdef", "a.example", "acct-1")
    assert one == pairwise_sub("secret-0123456789abcdef", "a.example", "acct-1")
    assert one != pairwise_sub("secret-0123456789abcdef", "b.example", "acct-1")
    assert one != pairwise_sub("secret-0123456789abcdef", "a.example", "acct-2")
    assert one != pairwise_sub("another-secret-0123456789", "a.example", "acct-1")
    # No ambiguity from concatenation: ("a.b", "c") and ("a", "b.c") differ.
    assert pairwise_sub("s" * 20, "ab", "c") != pairwise_sub("s" * 20, "a", "bc")
    assert len(one) <= 255 and one.isascii()


# ----------------------------------------------------------------------------- issue 8
@pytest.mark.parametrize("redirect", ["http://127.0.0.1/cb", "http://[::1]:8080/cb",
                                      "http://localhost:5000/cb", "https://192.0.2.7/cb"])
def test_two_native_apps_on_one_loopback_uri_get_different_subs(make_rp, new_browser,
                                                               shared_student, redirect):
    first = make_rp(redirect_uris=[redirect])
    second = make_rp(redirect_uris=[redirect])
    assert first.sector == "client:" + first.client_id
    assert second.sector == "client:" + second.client_id
    subs = {rp.client_id: sign_in_tokens(new_browser(), rp, shared_student).claims["sub"]
            for rp in (first, second)}
    assert subs[first.client_id] != subs[second.client_id]
    # Stable for each app across sign-ins.
    assert sign_in_tokens(new_browser(), first, shared_student).claims["sub"] == \
        subs[first.client_id]


def test_a_hostile_app_cannot_claim_a_native_apps_sector_by_host(make_rp, shared_student,
                                                                new_browser):
    """A hostile app knows a native app's (public) client id and registers a redirect host
    spelled like it, hoping for the native app's subs."""
    native = make_rp(redirect_uris=["http://127.0.0.1/cb"])
    copycat = make_rp(host=native.client_id)
    assert copycat.sector != native.sector
    subs = [sign_in_tokens(new_browser(), rp, shared_student).claims["sub"]
            for rp in (native, copycat)]
    assert subs[0] != subs[1]


def test_loopback_apps_share_a_sector_only_through_a_sector_document(make_rp, sector_server,
                                                                   http_sectors):
    uris = ["http://127.0.0.1:7001/cb", "http://127.0.0.1:7002/cb"]
    doc = sector_server.serve("/loopback-family.json", uris)
    one = make_rp(redirect_uris=uris[:1], sector_identifier_uri=doc)
    two = make_rp(redirect_uris=uris[1:], sector_identifier_uri=doc)
    assert one.sector == two.sector == "127.0.0.1"


def test_editing_a_loopback_client_keeps_its_own_sector(svc, make_rp):
    from idp.clients import registry
    from idp.clients.registry import ClientSpec
    from idp.store.models import Client

    rp = make_rp(redirect_uris=["http://127.0.0.1:7100/cb"])
    spec = ClientSpec(name="改名", redirect_uris=["http://127.0.0.1:7100/cb",
                                                 "http://127.0.0.1:7101/cb"],
                      post_logout_redirect_uris=[])
    with svc.db.session() as db:
        row = db.get(Client, rp.client_id)
        registry.update_client(svc, db, row, spec, actor="test")
        assert row.sector == "client:" + rp.client_id and row.name == "改名"


def test_a_loopback_client_from_before_keeps_its_sector_when_edited(svc, make_rp):
    """Clients registered before the own-sector rule keep their sector (and their subs)."""
    from idp.clients import registry
    from idp.clients.registry import ClientSpec
    from idp.store.models import Client

    rp = make_rp(redirect_uris=["http://127.0.0.1:7200/cb"])
    with svc.db.session() as db:
        db.get(Client, rp.client_id).sector = "127.0.0.1"  # as registered before issue 8
    spec = ClientSpec(name="旧アプリ", redirect_uris=["http://127.0.0.1:7200/cb"],
                      post_logout_redirect_uris=[])
    with svc.db.session() as db:
        row = db.get(Client, rp.client_id)
        registry.update_client(svc, db, row, spec, actor="test")
        assert row.sector == "127.0.0.1"
