"""The guarded outbound fetcher (idp/outbound.py, issue 8): every URL a relying party makes the
provider fetch (jwks_uri, sector_identifier_uri). Traffic goes to 127.0.0.1 only: names that
"resolve" elsewhere come from a monkeypatched resolver and are refused before any connect."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from idp import outbound
from idp.outbound import OutboundError, OutboundPolicy

LOOPBACK_ONLY = OutboundPolicy(allow_http=True,
                               allow_networks=outbound.parse_allow_list(["127.0.0.1"])[1])


class LocalServer:
    """An HTTP(S) server on 127.0.0.1 that records the Host header and the TLS SNI it saw."""

    def __init__(self, tls_files: tuple[str, str] | None = None) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hosts: list[str] = []
        self.sni: list[str | None] = []
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's naming
                server.hits += 1
                server.hosts.append(self.headers.get("Host", ""))
                if self.path == "/trickle":
                    return self._trickle()
                status, headers, body = server.routes.get(self.path, (404, {}, b"{}"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if headers.get("Transfer-Encoding") == "chunked":
                    for start in range(0, len(body), 4096):
                        piece = body[start:start + 4096]
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.wfile.write(body)

            def _trickle(self):
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    for _ in range(100):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(0.2)
                except OSError:
                    return

            def log_message(self, *args):
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # A refused body makes the fetcher hang up mid-write: expected, not worth a traceback.
        self.httpd.handle_error = lambda _request, _address: None
        self.port = self.httpd.server_address[1]
        scheme = "http"
        if tls_files:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls_files)
            context.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, path: str, document, status: int = 200, **headers: str) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.routes[path] = (status, {k.replace("_", "-"): v for k, v in headers.items()},
                             body)
        return self.base + path


@pytest.fixture(scope="module")
def server():
    s = LocalServer()
    yield s
    s.httpd.shutdown()


def _self_signed(tmp_path, name: str) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def fake_dns(monkeypatch):
    """Names → addresses for this test; every lookup is counted. Other names resolve as
    usual (IP literals only, in practice)."""
    table: dict[str, list[list[str]]] = {}
    calls: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in table:
            calls.append(host)
            answers = table[host]
            current = answers[min(len(calls_for(host)) - 1, len(answers) - 1)]
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6,
                     "", (a, port)) for a in current]
        return real(host, port, *args, **kwargs)

    def calls_for(host):
        return [c for c in calls if c == host]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def add(name: str, *answers: list[str]) -> None:
        table[name] = list(answers)

    add.calls = calls
    return add


# ----------------------------------------------------------------------------- the guard
def test_loopback_server_refused_without_the_allow_list_accepted_with_it(server):
    url = server.serve("/doc.json", ["https://a.example/cb"])
    before = server.hits
    with pytest.raises(OutboundError) as info:
        outbound.fetch_json(url, OutboundPolicy(allow_http=True))
    assert str(info.value) == outbound.NOT_ALLOWED
    assert server.hits == before  # refused before any connection
    assert outbound.fetch_json(url, LOOPBACK_ONLY) == ["https://a.example/cb"]


def test_https_server_is_reached_at_the_checked_address_under_its_own_name(tmp_path,
                                                                         fake_dns):
    """TLS: SNI, certificate check and Host all use the registered name, while the socket
    goes to the address that was checked."""
    name = "rp.intranet.test"
    cert, key = _self_signed(tmp_path, name)
    tls = LocalServer((cert, key))
    try:
        url = tls.serve("/jwks.json", {"keys": []}).replace("127.0.0.1", name)
        fake_dns(name, ["127.0.0.1"])
        policy = OutboundPolicy(allow_hosts=frozenset({name}), ca_file=cert)
        assert outbound.fetch_json(url, policy) == {"keys": []}
        assert tls.sni[-1] == name and tls.hosts[-1] == f"{name}:{tls.port}"
        # Without the allow-list the same name is refused (it resolves to loopback) ...
        with pytest.raises(OutboundError):
            outbound.fetch_json(url, OutboundPolicy(ca_file=cert))
        # ... and http is refused when the policy is https only.
        with pytest.raises(OutboundError, match="not allowed"):
            outbound.fetch_json(url.replace("https:", "http:"), policy)
        # A certificate for another name is refused even on an allowed address.
        fake_dns("other.intranet.test", ["127.0.0.1"])
        with pytest.raises(OutboundError) as info:
            outbound.fetch_json(url.replace(name, "other.intranet.test"),
                                OutboundPolicy(allow_hosts=frozenset({"other.intranet.test"}),
                                               ca_file=cert))
        assert str(info.value) == outbound.NOT_FETCHED
    finally:
        tls.httpd.shutdown()


def test_dns_rebinding_gets_no_second_lookup(server, fake_dns):
    """A hostile DNS answers an allowed address first and an internal one next time."""
    name = "rebind.example.test"
    fake_dns(name, ["127.0.0.1"], ["10.1.2.3"])
    url = server.serve("/rebind.json", [1]).replace("127.0.0.1", name)
    assert outbound.fetch_json(url, LOOPBACK_ONLY) == [1]
    assert fake_dns.calls == [name]  # resolved once; the connection used that answer
    assert server.hosts[-1] == f"{name}:{server.port}"
    with pytest.raises(OutboundError, match="not allowed"):  # the next answer is refused
        outbound.fetch_json(url, LOOPBACK_ONLY)


@pytest.mark.parametrize("answers", [
    ["10.0.0.5"], ["192.168.1.1"], ["172.16.0.1"], ["169.254.169.254"], ["100.64.0.1"],
    ["0.0.0.0"], ["224.0.0.1"], ["127.0.0.2"], ["::1"], ["fc00::1"], ["fd12:3456::1"],
    ["fe80::1"], ["::ffff:127.0.0.1"], ["::ffff:10.0.0.1"], ["2002:a00:1::"],
    ["64:ff9b::a00:1"], ["::"], ["ff02::1"],
    ["93.184.215.14", "10.0.0.5"],  # one public and one internal answer
])
def test_names_resolving_to_internal_addresses_are_refused(fake_dns, answers):
    fake_dns("internal.example.test", answers)
    with pytest.raises(OutboundError) as info:
        outbound.check_url("https://internal.example.test/jwks.json", OutboundPolicy())
    assert str(info.value) == outbound.NOT_ALLOWED


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/x", "https://[::1]/x", "https://10.0.0.1/x", "https://0x7f000001/x",
    "https://[::ffff:169.254.169.254]/x", "ftp://example.test/x", "file:///etc/passwd",
    "https://user:pw@example.test/x", "https:///x", "https://[::1/x", "http://93.184.215.14/x",
])
def test_literal_and_malformed_urls_are_refused(url):
    with pytest.raises(OutboundError):
        outbound.check_url(url, OutboundPolicy())


def test_public_addresses_pass_and_the_allow_list_opens_only_what_it_names(fake_dns):
    fake_dns("public.example.test", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
    assert str(outbound.check_url("https://public.example.test/j",
                                  OutboundPolicy()).address) == "93.184.215.14"
    fake_dns("apps.board.test", ["10.20.1.5"])
    hosts, nets = outbound.parse_allow_list(["10.20.0.0/16"])
    assert outbound.check_url("https://apps.board.test/j",
                              OutboundPolicy(allow_networks=nets)).address.exploded == \
        "10.20.1.5"
    fake_dns("other.board.test", ["10.21.0.1"])
    with pytest.raises(OutboundError):
        outbound.check_url("https://other.board.test/j", OutboundPolicy(allow_networks=nets))


def test_redirects_are_not_followed(server):
    target = server.serve("/target.json", ["https://a.example/cb"])
    url = server.serve("/moved.json", b"", 302, Location=target)
    hits = server.hits
    with pytest.raises(OutboundError) as info:
        outbound.fetch_json(url, LOOPBACK_ONLY)
    assert str(info.value) == outbound.NOT_FETCHED
    assert server.hits == hits + 1  # the redirect target was never asked


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_bodies_are_refused(server, chunked):
    big = json.dumps(["https://a.example/" + "x" * 100] * 1000).encode()
    assert len(big) > outbound.MAX_BYTES
    headers = {"Transfer_Encoding": "chunked"} if chunked else {}
    url = server.serve(f"/big-{chunked}.json", big, **headers)
    with pytest.raises(OutboundError) as info:
        outbound.fetch_json(url, LOOPBACK_ONLY)
    assert str(info.value) == outbound.NOT_FETCHED
    small = server.serve("/small.json", [1] * 100)
    assert outbound.fetch_json(small, LOOPBACK_ONLY) == [1] * 100


def test_a_slow_trickle_hits_the_time_limit(server):
    policy = OutboundPolicy(allow_http=True, allow_networks=LOOPBACK_ONLY.allow_networks,
                            timeout=1.0)
    started = time.monotonic()
    with pytest.raises(OutboundError):
        outbound.fetch_json(server.base + "/trickle", policy)
    assert time.monotonic() - started < 3


def test_production_policy_is_https_only(svc, monkeypatch):
    monkeypatch.setattr(svc.settings, "env", "production")
    policy = outbound.policy_from_settings(svc.settings, http=True)
    assert policy.allow_http is False
    with pytest.raises(OutboundError, match="not allowed"):
        outbound.check_url("http://127.0.0.1:9/x", policy)


def test_allow_list_setting_is_validated():
    from idp.settings import Settings, SettingsError

    base = {"env": "test", "jpki_trust_anchors": [], "jpki_revocation": "none"}
    ok = Settings.load({**base, "outbound_allow": "apps.board.example.jp, 10.20.0.0/16"},
                       environ={})
    assert ok.outbound_allow == ["apps.board.example.jp", "10.20.0.0/16"]
    for bad in ("http://x.example", "10.0.0.0/99", "a b"):
        with pytest.raises(SettingsError, match="IDP_OUTBOUND_ALLOW"):
            Settings.load({**base, "outbound_allow": [bad]}, environ={})


# ----------------------------------------------------------------------------- in use
@pytest.fixture
def http_sector(svc, monkeypatch):
    monkeypatch.setattr(svc.settings, "allow_http_sector_identifier", True)


def _refused_message(make_rp, **fields) -> str:
    from idp.clients.registry import ClientMetadataError

    with pytest.raises(ClientMetadataError) as info:
        make_rp(**fields)
    assert info.value.code == "invalid_client_metadata"
    return str(info.value)


def test_sector_document_on_loopback_needs_the_allow_list(make_rp, server, http_sector, svc,
                                                          monkeypatch):
    uris = ["https://sec1.example.test/cb"]
    url = server.serve("/sector-allow.json", uris)
    hits = server.hits
    assert "not allowed" in _refused_message(make_rp, redirect_uris=uris,
                                             sector_identifier_uri=url)
    assert server.hits == hits  # refused before connecting
    monkeypatch.setattr(svc.settings, "outbound_allow", ["127.0.0.0/8"])
    assert make_rp(redirect_uris=uris, sector_identifier_uri=url).sector == "127.0.0.1"


def test_sector_document_on_a_name_resolving_inside_is_refused(make_rp, fake_dns, server,
                                                               http_sector):
    """A registrant points sector_identifier_uri at a name of theirs that resolves to the
    cloud metadata address."""
    fake_dns("sector.attacker.test", ["169.254.169.254"])
    message = _refused_message(make_rp, redirect_uris=["https://s.example.test/cb"],
                               sector_identifier_uri="https://sector.attacker.test/s.json")
    assert "169.254" not in message


@pytest.mark.parametrize("path,status", [("/absent.json", 404), ("/err.json", 500)])
def test_fetch_failures_tell_the_registrant_nothing_about_the_network(make_rp, server,
                                                                      http_sector, svc,
                                                                      monkeypatch, path,
                                                                      status):
    monkeypatch.setattr(svc.settings, "outbound_allow", ["127.0.0.1"])
    uris = ["https://gen.example.test/cb"]
    messages = {
        _refused_message(make_rp, redirect_uris=uris,
                         sector_identifier_uri=server.serve(path, uris, status)),
        _refused_message(make_rp, redirect_uris=uris,
                         sector_identifier_uri="http://127.0.0.1:9/closed.json"),
        _refused_message(make_rp, redirect_uris=uris,
                         sector_identifier_uri=server.serve("/nojson.json", b"<html>")),
    }
    assert messages == {"sector_identifier_uri could not be fetched"}


def test_jwks_uri_is_checked_again_at_fetch_time(make_rp, server, svc, monkeypatch, browser,
                                                 shared_student, client):
    """Registered while the allow-list named its host; the operator then removes it: the
    keys are no longer fetched, so the assertion no longer authenticates."""
    from joserfc.jwk import RSAKey

    from tests.oidc.test_private_key_jwt import assertion, use

    key = RSAKey.generate_key(2048, auto_kid=True)
    monkeypatch.setattr(svc.settings, "outbound_allow", ["127.0.0.1"])
    jwks_uri = server.serve(f"/jwks-{key.kid[:8]}.json", {"keys": [key.as_dict(private=False)]})
    rp = make_rp(host="pkuri.example.test", auth_method="private_key_jwt", jwks_uri=jwks_uri)
    token_url = svc.settings.issuer + "/token"
    ok = use(client, browser, rp, shared_student, assertion(key, rp.client_id, token_url))
    assert ok.status_code == 200, ok.get_json()
    monkeypatch.setattr(svc.settings, "outbound_allow", [])
    refused = use(client, browser, rp, shared_student, assertion(key, rp.client_id, token_url))
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"
