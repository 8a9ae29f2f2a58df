import threading
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from idp.jpki import (
    CardError,
    CrlRevocation,
    NoRevocation,
    OcspCache,
    OcspRevocation,
    OcspThenCrl,
    PlatformRevocation,
    TrustAnchors,
    build_revocation_checker,
    validate_path,
)
from idp.jpki.testing.ocsp_responder import OcspResponderServer
from idp.jpki.testing.testpki import make_crl


def code_of(fn, *args) -> str:
    with pytest.raises(CardError) as info:
        fn(*args)
    return info.value.code


@pytest.fixture
def validated(card, anchors, now):
    return validate_path(card.der, anchors, now)


@pytest.fixture
def validated2(card2, anchors, now):
    return validate_path(card2.der, anchors, now)


def write_crl(tmp_path, root, revoked, now, *, name="crl.der", pem=False, **kw):
    data = make_crl(root, revoked, kw.pop("this_update", now - timedelta(hours=1)),
                    kw.pop("next_update", now + timedelta(days=1)), **kw)
    if pem:
        data = x509.load_der_x509_crl(data).public_bytes(serialization.Encoding.PEM)
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# -- CRL ----------------------------------------------------------------------------------------


def test_crl_good_and_revoked(tmp_path, root, anchors, validated, validated2, card, now):
    path = write_crl(tmp_path, root, [card.certificate.serial_number], now)
    crl = CrlRevocation([path], anchors=anchors)
    assert code_of(crl.check, validated, now) == "certificate_revoked"
    crl.check(validated2, now)


def test_crl_pem_and_refresh_swaps(tmp_path, root, anchors, validated, card, now):
    path = write_crl(tmp_path, root, [], now, pem=True)
    crl = CrlRevocation([path], anchors=anchors)
    crl.check(validated, now)
    write_crl(tmp_path, root, [card.certificate.serial_number], now, pem=True,
              this_update=now - timedelta(minutes=30))
    statuses = crl.refresh(now)
    assert [s.ok for s in statuses] == [True] and statuses[0].revoked_count == 1
    assert code_of(crl.check, validated, now) == "certificate_revoked"


def test_stale_crl_is_unavailable(tmp_path, root, anchors, validated, now):
    path = write_crl(tmp_path, root, [], now, this_update=now - timedelta(days=2),
                     next_update=now - timedelta(seconds=1))
    crl = CrlRevocation([path], anchors=anchors)
    assert code_of(crl.check, validated, now) == "revocation_unavailable"


def test_crl_becoming_stale_after_load_is_unavailable(tmp_path, root, anchors, validated, now):
    path = write_crl(tmp_path, root, [], now, next_update=now + timedelta(hours=1))
    crl = CrlRevocation([path], anchors=anchors)
    crl.check(validated, now)
    assert code_of(crl.check, validated, now + timedelta(hours=2)) == "revocation_unavailable"


def test_crl_signed_by_wrong_key_is_unavailable(tmp_path, root, other_root, anchors, validated,
                                                card, now):
    # Same issuer DN, other key: must not be used, neither to revoke nor to clear.
    path = write_crl(tmp_path, root, [], now, signing_key=other_root.private_key)
    crl = CrlRevocation([path], anchors=anchors)
    assert code_of(crl.check, validated, now) == "revocation_unavailable"
    statuses = crl.refresh(now)
    assert not statuses[0].ok and "signature" in statuses[0].message


def test_crl_missing_or_garbage_source(tmp_path, anchors, validated, now):
    garbage = tmp_path / "garbage.der"
    garbage.write_bytes(b"\x30\x03abc")
    crl = CrlRevocation([str(tmp_path / "missing.der"), str(garbage)], anchors=anchors)
    assert code_of(crl.check, validated, now) == "revocation_unavailable"
    assert [s.ok for s in crl.refresh(now)] == [False, False]


def test_crl_failed_refresh_keeps_fresh_previous(tmp_path, root, anchors, validated, card, now):
    path = write_crl(tmp_path, root, [card.certificate.serial_number], now)
    crl = CrlRevocation([path], anchors=anchors)
    (tmp_path / "crl.der").write_bytes(b"broken")
    status = crl.refresh(now)[0]
    assert not status.ok and "keeping" in status.message
    assert code_of(crl.check, validated, now) == "certificate_revoked"


def test_crl_rollback_is_ignored(tmp_path, root, anchors, validated, card, now):
    path = write_crl(tmp_path, root, [card.certificate.serial_number], now)
    crl = CrlRevocation([path], anchors=anchors)
    write_crl(tmp_path, root, [], now, this_update=now - timedelta(days=1))
    crl.refresh(now)
    assert code_of(crl.check, validated, now) == "certificate_revoked"


def test_crl_for_other_issuer_only_is_unavailable(tmp_path, other_root, root, card, now):
    anchors = TrustAnchors([root.certificate, other_root.certificate])
    validated = validate_path(card.der, anchors, now)
    path = write_crl(tmp_path, other_root, [], now)
    crl = CrlRevocation([path], anchors=anchors)
    assert code_of(crl.check, validated, now) == "revocation_unavailable"


def test_crl_fetch_callable_for_urls(root, anchors, validated, card, now):
    data = make_crl(root, [card.certificate.serial_number], now - timedelta(hours=1),
                    now + timedelta(days=1))
    seen = []

    def fetch(source):
        seen.append(source)
        return data

    crl = CrlRevocation(["https://crl.example/jpki.crl"], fetch, anchors=anchors)
    assert seen == ["https://crl.example/jpki.crl"]
    assert code_of(crl.check, validated, now) == "certificate_revoked"
    with pytest.raises(ValueError):
        CrlRevocation(["ldap://x/y"], anchors=anchors)


def test_crl_concurrent_refresh_and_check(tmp_path, root, anchors, validated, now):
    path = write_crl(tmp_path, root, list(range(1, 5000)), now)
    crl = CrlRevocation([path], anchors=anchors)
    errors = []

    def reader():
        try:
            for _ in range(2000):
                crl.check(validated, now)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(5):
        crl.refresh(now)
    for t in threads:
        t.join()
    assert errors == []


# -- OCSP ---------------------------------------------------------------------------------------


def test_ocsp_good_then_revoked_over_http(ocsp_server, validated, card, now):
    checker = OcspRevocation(ocsp_server.url, cache=OcspCache())
    checker.check(validated, now)
    assert ocsp_server.request_count == 1
    ocsp_server.revoke(card.certificate.serial_number)
    checker.cache.clear()
    assert code_of(checker.check, validated, now) == "certificate_revoked"


def test_ocsp_revoked_fresh_checker(ocsp_server, validated, card, now):
    ocsp_server.revoke(card.certificate.serial_number)
    assert code_of(OcspRevocation(ocsp_server.url).check, validated, now) == "certificate_revoked"


def test_ocsp_signed_by_ca_directly(root, validated, now):
    with OcspResponderServer(root.certificate, root.private_key, clock=lambda: now) as server:
        OcspRevocation(server.url).check(validated, now)


def test_ocsp_unknown_is_unavailable(ocsp_server, validated, card, now):
    ocsp_server.mark_unknown(card.certificate.serial_number)
    assert code_of(OcspRevocation(ocsp_server.url).check, validated, now) == (
        "revocation_unavailable"
    )


@pytest.mark.parametrize("mode", ["500", "close"])
def test_ocsp_down_is_unavailable(ocsp_server, validated, now, mode):
    ocsp_server.set_down(True, mode)
    err = pytest.raises(CardError, OcspRevocation(ocsp_server.url, timeout=2).check,
                        validated, now).value
    assert err.code == "revocation_unavailable"
    ocsp_server.set_down(False)
    OcspRevocation(ocsp_server.url).check(validated, now)


def test_ocsp_unreachable_is_unavailable(validated, root, now):
    server = OcspResponderServer(root.certificate, root.private_key, clock=lambda: now)
    url = server.start()
    server.stop()
    assert code_of(OcspRevocation(url, timeout=1).check, validated, now) == (
        "revocation_unavailable"
    )


def test_ocsp_nonce_mismatch(ocsp_server, validated, now):
    ocsp_server.nonce_mode = "wrong"
    err = pytest.raises(CardError, OcspRevocation(ocsp_server.url).check, validated, now).value
    assert err.code == "revocation_unavailable" and "nonce" in err.message


def test_ocsp_without_nonce_is_accepted(ocsp_server, validated, now):
    ocsp_server.nonce_mode = "omit"
    OcspRevocation(ocsp_server.url).check(validated, now)


def test_ocsp_responder_not_authorised(other_root, root, validated, now, key_pool):
    # Signed by the same-DN impostor CA: the signature does not verify with the real CA key.
    with OcspResponderServer(root.certificate, other_root.private_key,
                             clock=lambda: now) as server:
        assert code_of(OcspRevocation(server.url).check, validated, now) == (
            "revocation_unavailable"
        )


def test_ocsp_delegate_from_other_ca_refused(other_root, root, validated, now, responder):
    from idp.jpki.testing.testpki import issue_ocsp_responder_cert

    rogue = issue_ocsp_responder_cert(other_root, key=responder.private_key,
                                      not_before=now - timedelta(days=1))
    with OcspResponderServer(root.certificate, responder_cert=rogue.certificate,
                             responder_key=rogue.private_key, clock=lambda: now) as server:
        assert code_of(OcspRevocation(server.url).check, validated, now) == (
            "revocation_unavailable"
        )


def test_ocsp_delegate_without_eku_refused(root, validated, now, card2):
    from idp.jpki.testing.testpki import issue_user_cert

    # A card certificate issued by the same CA is not an OCSP responder.
    not_responder = issue_user_cert(root, key=card2.private_key,
                                    not_before=now - timedelta(days=1))
    with OcspResponderServer(root.certificate, responder_cert=not_responder.certificate,
                             responder_key=not_responder.private_key,
                             clock=lambda: now) as server:
        assert code_of(OcspRevocation(server.url).check, validated, now) == (
            "revocation_unavailable"
        )


def test_ocsp_response_timing(ocsp_server, validated, now):
    # Our clock far ahead of the responder's: nextUpdate already past.
    checker = OcspRevocation(ocsp_server.url)
    assert code_of(checker.check, validated, now + timedelta(hours=2)) == "revocation_unavailable"
    # Our clock behind: thisUpdate in the future beyond the skew.
    assert code_of(checker.check, validated, now - timedelta(minutes=10)) == (
        "revocation_unavailable"
    )
    checker.check(validated, now - timedelta(minutes=2))  # within 5 min skew


def test_ocsp_cache_hit(ocsp_server, validated, now):
    checker = OcspRevocation(ocsp_server.url)
    checker.check(validated, now)
    ocsp_server.stop()
    checker.check(validated, now + timedelta(minutes=59))  # cached until nextUpdate (1 h)
    assert ocsp_server.request_count == 1
    assert code_of(checker.check, validated, now + timedelta(hours=1)) == (
        "revocation_unavailable"
    )


def test_ocsp_revoked_is_cached(ocsp_server, validated, card, now):
    ocsp_server.revoke(card.certificate.serial_number)
    checker = OcspRevocation(ocsp_server.url)
    assert code_of(checker.check, validated, now) == "certificate_revoked"
    ocsp_server.set_down(True)
    assert code_of(checker.check, validated, now) == "certificate_revoked"


def test_ocsp_cache_is_bounded():
    from datetime import UTC, datetime

    cache = OcspCache(max_entries=3)
    t = datetime.now(UTC)
    for i in range(10):
        cache.put(("x", i), "good", t + timedelta(hours=1))
    assert len(cache) == 3
    assert cache.get(("x", 0), t) is None and cache.get(("x", 9), t) == "good"
    assert cache.get(("x", 9), t + timedelta(hours=2)) is None


def test_ocsp_with_injected_post(ocsp_server, validated, now):
    calls = []

    def post(url, body, timeout):
        calls.append((url, timeout))
        return ocsp_server.respond(body)

    OcspRevocation("https://ocsp.example/", post, timeout=3).check(validated, now)
    assert calls == [("https://ocsp.example/", 3)]

    def garbage(url, body, timeout):
        return b"\x30\x00"

    assert code_of(OcspRevocation("https://o/", garbage).check, validated, now) == (
        "revocation_unavailable"
    )


def test_ocsp_get_form(ocsp_server, validated):
    import base64
    from urllib.parse import quote

    import requests
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509 import ocsp

    req = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(validated.certificate, validated.issuer_certificate, hashes.SHA1())
        .build()
    )
    encoded = quote(base64.b64encode(req.public_bytes(serialization.Encoding.DER)).decode(),
                    safe="")
    r = requests.get(ocsp_server.url + encoded, timeout=5)
    resp = ocsp.load_der_ocsp_response(r.content)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD


# -- combinations ------------------------------------------------------------------------------


def test_ocsp_down_falls_back_to_crl(tmp_path, ocsp_server, root, anchors, validated,
                                     validated2, card, now):
    path = write_crl(tmp_path, root, [card.certificate.serial_number], now)
    checker = OcspThenCrl(OcspRevocation(ocsp_server.url, timeout=2),
                          CrlRevocation([path], anchors=anchors))
    ocsp_server.set_down(True)
    checker.check(validated2, now)  # OCSP down, CRL says good
    assert code_of(checker.check, validated, now) == "certificate_revoked"  # CRL says revoked


def test_ocsp_revoked_is_final(tmp_path, ocsp_server, root, anchors, validated, card, now):
    path = write_crl(tmp_path, root, [], now)  # the CRL does not know yet
    checker = OcspThenCrl(OcspRevocation(ocsp_server.url), CrlRevocation([path], anchors=anchors))
    ocsp_server.revoke(card.certificate.serial_number)
    assert code_of(checker.check, validated, now) == "certificate_revoked"


def test_both_unavailable(tmp_path, ocsp_server, root, anchors, validated, now):
    path = write_crl(tmp_path, root, [], now, next_update=now - timedelta(seconds=1),
                     this_update=now - timedelta(days=1))
    checker = OcspThenCrl(OcspRevocation(ocsp_server.url), CrlRevocation([path], anchors=anchors))
    ocsp_server.set_down(True)
    err = pytest.raises(CardError, checker.check, validated, now).value
    assert err.code == "revocation_unavailable"
    assert "OCSP" in err.message and "CRL" in err.message


class FakePlatform:
    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def status(self, issuer_dn, serial, certificate_der):
        self.calls.append((issuer_dn, serial, certificate_der))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_platform_adapter(validated, card, now):
    good = FakePlatform("good")
    PlatformRevocation(good).check(validated, now)
    assert good.calls == [(validated.issuer, validated.serial, card.der)]
    assert code_of(PlatformRevocation(FakePlatform("revoked")).check, validated, now) == (
        "certificate_revoked"
    )
    for answer in ["unknown", "GOOD", None, TimeoutError("slow")]:
        assert code_of(PlatformRevocation(FakePlatform(answer)).check, validated, now) == (
            "revocation_unavailable"
        )


def test_build_revocation_checker(tmp_path, root, anchors, now):
    path = write_crl(tmp_path, root, [], now)
    assert isinstance(build_revocation_checker("crl", [path], None, anchors, allow_none=False),
                      CrlRevocation)
    assert isinstance(build_revocation_checker("ocsp", [], "http://127.0.0.1:1/", anchors,
                                               allow_none=False), OcspRevocation)
    both = build_revocation_checker(" OCSP , crl ", [path], "http://o/", anchors,
                                    allow_none=False)
    assert isinstance(both, OcspThenCrl)
    assert isinstance(build_revocation_checker("none", [], None, anchors, allow_none=True),
                      NoRevocation)
    with pytest.raises(ValueError, match="only allowed in development"):
        build_revocation_checker("none", [], None, anchors, allow_none=False)
    with pytest.raises(ValueError, match="IDP_JPKI_CRL_SOURCES"):
        build_revocation_checker("crl", [" "], None, anchors, allow_none=False)
    with pytest.raises(ValueError, match="IDP_JPKI_OCSP_URL"):
        build_revocation_checker("ocsp,crl", [path], None, anchors, allow_none=False)
    with pytest.raises(ValueError, match="not one of"):
        build_revocation_checker("crl,ocsp", [path], "http://o/", anchors, allow_none=False)


def _responder_like(root, key, now, *, eku, not_after=None):
    from cryptography.hazmat.primitives import hashes

    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "responder")]))
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=2))
        .not_valid_after(not_after or now + timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        .sign(root.private_key, hashes.SHA256())
    )


def test_ocsp_delegate_with_other_eku_refused(root, validated, now, responder):
    cert = _responder_like(root, responder.private_key, now,
                           eku=[x509.ExtendedKeyUsageOID.CLIENT_AUTH])
    with OcspResponderServer(root.certificate, responder_cert=cert,
                             responder_key=responder.private_key, clock=lambda: now) as server:
        assert code_of(OcspRevocation(server.url).check, validated, now) == (
            "revocation_unavailable"
        )


def test_ocsp_expired_delegate_refused(root, validated, now, responder):
    eku = [x509.ExtendedKeyUsageOID.OCSP_SIGNING]
    expired = _responder_like(root, responder.private_key, now, eku=eku,
                              not_after=now - timedelta(days=1))
    with OcspResponderServer(root.certificate, responder_cert=expired,
                             responder_key=responder.private_key, clock=lambda: now) as server:
        assert code_of(OcspRevocation(server.url).check, validated, now) == (
            "revocation_unavailable"
        )
    fine = _responder_like(root, responder.private_key, now, eku=eku)
    with OcspResponderServer(root.certificate, responder_cert=fine,
                             responder_key=responder.private_key, clock=lambda: now) as server:
        OcspRevocation(server.url).check(validated, now)


def test_ocsp_tampered_signature_refused(root, validated, now):
    # Signed by the CA itself (no certificates appended): the DER ends with the signature.
    server = OcspResponderServer(root.certificate, root.private_key, clock=lambda: now)

    def post(url, body, timeout):
        data = bytearray(server.respond(body))
        data[-1] ^= 0x01
        return bytes(data)

    def honest(url, body, timeout):
        return server.respond(body)

    OcspRevocation("http://ocsp.test/", honest).check(validated, now)
    err = pytest.raises(CardError, OcspRevocation("http://ocsp.test/", post).check,
                        validated, now).value
    assert err.code == "revocation_unavailable" and "not signed" in err.message


def test_ocsp_answer_for_other_certificate_refused(root, validated, validated2, now):
    server = OcspResponderServer(root.certificate, root.private_key, clock=lambda: now)
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509 import ocsp

    def post(url, body, timeout):
        other = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(validated2.certificate, validated2.issuer_certificate, hashes.SHA1())
            .build()
        )
        return server.respond(other.public_bytes(serialization.Encoding.DER))

    err = pytest.raises(CardError, OcspRevocation("http://ocsp.test/", post).check,
                        validated, now).value
    assert err.code == "revocation_unavailable" and "does not answer" in err.message


def test_crl_default_fetch_over_http(tmp_path, root, anchors, validated, card, now):
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    write_crl(tmp_path, root, [card.certificate.serial_number], now, name="jpki.crl")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        crl = CrlRevocation([base + "jpki.crl", base + "missing.crl"], anchors=anchors)
        assert code_of(crl.check, validated, now) == "certificate_revoked"
        assert [s.ok for s in crl.refresh(now)] == [True, False]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
