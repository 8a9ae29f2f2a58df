"""End-to-end: token dict -> parse_token -> CardVerifier.verify, each error code from the
right input.  Signatures are made with ``cryptography`` directly (no bridge code)."""

import base64
import hashlib
import json
import subprocess
import sys
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import NameOID

from idp.jpki import (
    CardError,
    CardVerifier,
    CrlRevocation,
    NoRevocation,
    OcspRevocation,
    OcspThenCrl,
    TrustAnchors,
    VerifiedCard,
    parse_token,
)
from idp.jpki.testing.pki_dir import load_test_pki, write_test_pki
from idp.jpki.testing.testpki import issue_user_cert, make_crl

from .conftest import CHALLENGE, ORIGIN


def sign(private_key, origin: str, challenge: str) -> bytes:
    message = hashlib.sha256(origin.encode()).digest() + hashlib.sha256(challenge.encode()).digest()
    return private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def token_for(cert_der: bytes, signature: bytes):
    return parse_token(
        {
            "format": "jpki-auth:1",
            "certificate": base64.b64encode(cert_der).decode(),
            "algorithm": "RS256",
            "signature": base64.b64encode(signature).decode(),
            "bridge": "test/1",
        }
    )


def verify_code(verifier, token, now, origin=ORIGIN, challenge=CHALLENGE) -> str:
    with pytest.raises(CardError) as info:
        verifier.verify(token, origin, challenge, now)
    return info.value.code


class CountingRevocation:
    def __init__(self, inner=None):
        self.inner = inner or NoRevocation()
        self.calls = 0

    def check(self, validated, now):
        self.calls += 1
        self.inner.check(validated, now)


def test_valid_token_verifies(card, root, anchors, now):
    verifier = CardVerifier(anchors, NoRevocation())
    token = token_for(card.der, sign(card.private_key, ORIGIN, CHALLENGE))
    result = verifier.verify(token, ORIGIN, CHALLENGE, now)
    assert isinstance(result, VerifiedCard)
    assert result.issuer == root.certificate.subject.rfc4514_string()
    assert result.serial == format(card.certificate.serial_number, "x")
    assert result.certificate_sha256 == hashlib.sha256(card.der).hexdigest()
    assert result.not_after == card.certificate.not_valid_after_utc
    assert result.subject_cn == card.certificate.subject.get_attributes_for_oid(
        NameOID.COMMON_NAME
    )[0].value
    assert len(result.subject_cn) == 24


def test_testpki_token_helper_matches(card, anchors, now):
    verifier = CardVerifier(anchors, NoRevocation())
    verifier.verify(parse_token(card.token(ORIGIN, CHALLENGE)), ORIGIN, CHALLENGE, now)


@pytest.mark.parametrize(
    "origin, challenge",
    [
        ("https://evil.example", CHALLENGE),
        (ORIGIN + "/", CHALLENGE),
        (ORIGIN, CHALLENGE[:-1] + "x"),
    ],
)
def test_other_origin_or_challenge(card, anchors, now, origin, challenge):
    counting = CountingRevocation()
    verifier = CardVerifier(anchors, counting)
    token = token_for(card.der, sign(card.private_key, ORIGIN, CHALLENGE))
    assert verify_code(verifier, token, now, origin, challenge) == "signature_invalid"
    assert counting.calls == 0  # refused before any revocation round trip


def test_signature_by_other_key(card, card2, anchors, now):
    counting = CountingRevocation()
    token = token_for(card.der, sign(card2.private_key, ORIGIN, CHALLENGE))
    assert verify_code(CardVerifier(anchors, counting), token, now) == "signature_invalid"
    assert counting.calls == 0


def test_truncated_signature(card, anchors, now):
    token = token_for(card.der, sign(card.private_key, ORIGIN, CHALLENGE)[1:])
    assert verify_code(CardVerifier(anchors, NoRevocation()), token, now) == "signature_invalid"


def test_error_codes_by_certificate(card, root, other_root, anchors, now):
    verifier = CardVerifier(anchors, NoRevocation())
    sig = sign(card.private_key, ORIGIN, CHALLENGE)
    token = token_for(card.der, sig)
    assert verify_code(verifier, token, card.certificate.not_valid_after_utc + timedelta(1)) == (
        "certificate_expired"
    )
    assert verify_code(verifier, token, card.certificate.not_valid_before_utc - timedelta(1)) == (
        "certificate_not_yet_valid"
    )
    # the same card key, certified by a same-DN impostor CA
    forged = issue_user_cert(other_root, key=card.private_key, not_before=now - timedelta(1))
    assert verify_code(verifier, token_for(forged.der, sig), now) == "certificate_untrusted"
    signing = issue_user_cert(root, key=card.private_key, signing_profile=True,
                              not_before=now - timedelta(1))
    assert verify_code(verifier, token_for(signing.der, sig), now) == "certificate_untrusted"
    assert verify_code(verifier, token_for(b"\x30\x03\x02\x01\x01", sig), now) == (
        "invalid_request"
    )


def test_small_key_card(root, anchors, now):
    weak = issue_user_cert(root, key_size=1024, not_before=now - timedelta(days=1))
    token = token_for(weak.der, sign(weak.private_key, ORIGIN, CHALLENGE))
    with pytest.raises(CardError) as info:
        CardVerifier(anchors, NoRevocation()).verify(token, ORIGIN, CHALLENGE, now)
    assert info.value.code == "certificate_untrusted" and "key too small" in info.value.message


def test_revoked_and_unavailable_via_verifier(tmp_path, card, card2, root, anchors, now):
    crl_path = tmp_path / "crl.der"
    crl_path.write_bytes(make_crl(root, [card.certificate.serial_number],
                                  now - timedelta(hours=1), now + timedelta(days=1)))
    verifier = CardVerifier(anchors, CrlRevocation([str(crl_path)], anchors=anchors))
    token = token_for(card.der, sign(card.private_key, ORIGIN, CHALLENGE))
    assert verify_code(verifier, token, now) == "certificate_revoked"
    token2 = token_for(card2.der, sign(card2.private_key, ORIGIN, CHALLENGE))
    verifier.verify(token2, ORIGIN, CHALLENGE, now)
    assert verify_code(verifier, token2, now + timedelta(days=2)) == "revocation_unavailable"


def test_ocsp_revoked_via_verifier(ocsp_server, card, anchors, now):
    verifier = CardVerifier(anchors, OcspRevocation(ocsp_server.url))
    ocsp_server.revoke(card.certificate.serial_number)
    token = token_for(card.der, sign(card.private_key, ORIGIN, CHALLENGE))
    assert verify_code(verifier, token, now) == "certificate_revoked"


def test_forged_token_costs_no_ocsp_round_trip(ocsp_server, card, card2, anchors, now):
    verifier = CardVerifier(anchors, OcspThenCrl(OcspRevocation(ocsp_server.url),
                                                 NoRevocation()))
    token = token_for(card.der, sign(card2.private_key, ORIGIN, CHALLENGE))
    assert verify_code(verifier, token, now) == "signature_invalid"
    assert ocsp_server.request_count == 0


def test_buggy_checker_fails_closed(card, anchors, now):
    class Broken:
        def check(self, validated, now):
            raise RuntimeError("bug")

    token = token_for(card.der, sign(card.private_key, ORIGIN, CHALLENGE))
    assert verify_code(CardVerifier(anchors, Broken()), token, now) == "revocation_unavailable"


# -- testpki on disk ------------------------------------------------------------------------------


def test_write_and_load_test_pki(tmp_path):
    manifest = write_test_pki(tmp_path, n_cards=1)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"root.pem", "root-key.pem", "card-1-cert.pem", "card-1-cert.der", "card-1-key.pem",
            "crl.der", "ocsp-cert.pem", "ocsp-key.pem", "manifest.json"} <= names
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    pki = load_test_pki(tmp_path)
    anchors = TrustAnchors.from_pem_files([pki.root_path])
    verifier = CardVerifier(anchors, CrlRevocation([str(pki.crl_path)], anchors=anchors))
    from datetime import UTC, datetime

    result = verifier.verify(parse_token(pki.cards[0].token(ORIGIN, CHALLENGE)), ORIGIN,
                             CHALLENGE, datetime.now(UTC))
    assert result.serial == manifest["cards"][0]["serial"]
    assert "JPKI-TEST" in result.issuer


def test_testpki_cli_revoke(tmp_path):
    env_python = sys.executable
    subprocess.run([env_python, "-m", "idp.jpki.testing.pki_dir", "write", str(tmp_path),
                    "--cards", "1"],
                   check=True, capture_output=True)
    serial = json.loads((tmp_path / "manifest.json").read_text())["cards"][0]["serial"]
    subprocess.run([env_python, "-m", "idp.jpki.testing.pki_dir", "crl", str(tmp_path), "--revoke",
                    serial], check=True, capture_output=True)
    pki = load_test_pki(tmp_path)
    anchors = TrustAnchors.from_pem_files([pki.root_path])
    from datetime import UTC, datetime

    verifier = CardVerifier(anchors, CrlRevocation([str(pki.crl_path)], anchors=anchors))
    with pytest.raises(CardError) as info:
        verifier.verify(parse_token(pki.cards[0].token(ORIGIN, CHALLENGE)), ORIGIN, CHALLENGE,
                        datetime.now(UTC))
    assert info.value.code == "certificate_revoked"


def test_ocsp_responder_cli(tmp_path, card):
    pki_dir = tmp_path / "pki"
    write_test_pki(pki_dir, n_cards=1)
    pki = load_test_pki(pki_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "idp.jpki.testing.ocsp_responder", "--pki", str(pki_dir),
         "--port", "0", "--revoke", pki.cards[0].serial],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        url = line.rsplit(" at ", 1)[1].strip()
        anchors = TrustAnchors.from_pem_files([pki.root_path])
        verifier = CardVerifier(anchors, OcspRevocation(url))
        from datetime import UTC, datetime

        with pytest.raises(CardError) as info:
            verifier.verify(parse_token(pki.cards[0].token(ORIGIN, CHALLENGE)), ORIGIN,
                            CHALLENGE, datetime.now(UTC))
        assert info.value.code == "certificate_revoked"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
