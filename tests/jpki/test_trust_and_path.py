import re
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from idp.jpki import CardError, TrustAnchorError, TrustAnchors, validate_path
from idp.jpki.testing.testpki import TestCA, create_root, issue_user_cert

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "jpki"


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def code_of(fn, *args) -> str:
    with pytest.raises(CardError) as info:
        fn(*args)
    return info.value.code


# -- shipped anchors ----------------------------------------------------------------------------


def test_shipped_anchors_load_and_match_readme():
    files = sorted(CONFIG.glob("auth_ca_*.pem"))
    assert [f.name for f in files] == ["auth_ca_2015.pem", "auth_ca_2023.pem"]
    anchors = TrustAnchors.from_pem_files(files)
    assert len(anchors) == 2
    table = {}
    for line in (CONFIG / "README.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*(auth_ca_\d+\.pem)\s*\|.*\|\s*([0-9A-F:]{95})\s*\|$", line)
        if m:
            table[m.group(1)] = m.group(2).replace(":", "").lower()
    assert set(table) == {f.name for f in files}
    for f in files:
        cert = x509.load_pem_x509_certificate(f.read_bytes())
        assert cert.fingerprint(hashes.SHA256()).hex() == table[f.name]
        assert anchors.fingerprint(cert) == table[f.name]
        assert cert.subject.rfc4514_string() == (
            "OU=Japan Agency for Local Authority Information Systems,"
            "OU=JPKI for user authentication,O=JPKI,C=JP"
        )
    # and the shared copies are identical to what we ship
    shared = Path("/work/shared/jpki-trust-anchors")
    if shared.exists():
        for f in files:
            assert (shared / f.name).read_bytes() == f.read_bytes()


def test_anchor_bundle_with_several_pems(tmp_path, root, other_root):
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(root.pem + other_root.pem)
    anchors = TrustAnchors.from_pem_files([bundle, bundle])
    assert len(anchors) == 2


def test_intermediate_as_anchor_is_refused(tmp_path, card, root):
    # A non-self-signed certificate must never be accepted as an anchor.
    path = tmp_path / "leaf.pem"
    path.write_bytes(card.certificate.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(TrustAnchorError, match="Intermediate CA certificates are not supported"):
        TrustAnchors.from_pem_files([path])


def test_bad_anchor_file(tmp_path):
    path = tmp_path / "x.pem"
    path.write_text("hello")
    with pytest.raises(TrustAnchorError):
        TrustAnchors.from_pem_files([path])
    with pytest.raises(TrustAnchorError):
        TrustAnchors.from_pem_files([tmp_path / "missing.pem"])
    with pytest.raises(TrustAnchorError):
        TrustAnchors([])


# -- issuer selection by signature --------------------------------------------------------------


def test_same_dn_generations_pick_by_signature(root, other_root, card, key_pool, now):
    assert root.certificate.subject == other_root.certificate.subject
    other_card = issue_user_cert(other_root, key=card.private_key, not_before=now - timedelta(1))
    for order in ([root, other_root], [other_root, root]):
        anchors = TrustAnchors([ca.certificate for ca in order])
        assert anchors.issuer_of(card.certificate) == root.certificate
        assert anchors.issuer_of(other_card.certificate) == other_root.certificate
        assert validate_path(card.der, anchors, now).issuer_certificate == root.certificate
        v = validate_path(other_card.der, anchors, now)
        assert v.issuer_certificate == other_root.certificate
        assert v.issuer_sha256 == anchors.fingerprint(other_root.certificate)


def test_same_dn_other_key_is_untrusted(other_root, card, now):
    anchors = TrustAnchors([other_root.certificate])
    assert anchors.issuer_of(card.certificate) is None
    assert code_of(validate_path, card.der, anchors, now) == "certificate_untrusted"


# -- path validation ----------------------------------------------------------------------------


def test_valid_path(card, root, anchors, now):
    v = validate_path(card.der, anchors, now)
    assert v.certificate == card.certificate
    assert v.issuer_certificate == root.certificate
    assert v.issuer == root.certificate.subject.rfc4514_string()
    assert v.serial == format(card.certificate.serial_number, "x")
    assert v.sha256 == card.certificate.fingerprint(hashes.SHA256()).hex()
    assert v.not_after == card.certificate.not_valid_after_utc
    assert v.subject_cn == card.certificate.subject.get_attributes_for_oid(
        x509.NameOID.COMMON_NAME
    )[0].value


def test_expired_and_not_yet_valid(card, anchors):
    nb, na = card.certificate.not_valid_before_utc, card.certificate.not_valid_after_utc
    assert code_of(validate_path, card.der, anchors, nb - timedelta(seconds=1)) == (
        "certificate_not_yet_valid"
    )
    validate_path(card.der, anchors, nb)
    validate_path(card.der, anchors, na)
    # the root (10 years) outlives the card (5 years)
    assert code_of(validate_path, card.der, anchors, na + timedelta(seconds=1)) == (
        "certificate_expired"
    )


def test_expired_card_cert(root, anchors, key_pool, card, now):
    old = issue_user_cert(
        root, key=card.private_key, not_before=now - timedelta(days=20),
        not_after=now - timedelta(days=1),
    )
    assert code_of(validate_path, old.der, anchors, now) == "certificate_expired"
    future = issue_user_cert(
        root, key=card.private_key, not_before=now + timedelta(days=1),
        not_after=now + timedelta(days=100),
    )
    assert code_of(validate_path, future.der, anchors, now) == "certificate_not_yet_valid"


def test_expired_anchor_is_untrusted(key_pool, card, now):
    old_root = create_root(
        key=key_pool.get(), not_before=now - timedelta(days=400), not_after=now - timedelta(days=1)
    )
    leaf = issue_user_cert(old_root, key=card.private_key, not_before=now - timedelta(days=300))
    anchors = TrustAnchors([old_root.certificate])
    err = pytest.raises(CardError, validate_path, leaf.der, anchors, now).value
    assert err.code == "certificate_untrusted" and "CA" in err.message


def test_small_key_refused(root, anchors, now):
    weak = issue_user_cert(root, key_size=1024, not_before=now - timedelta(days=1))
    err = pytest.raises(CardError, validate_path, weak.der, anchors, now).value
    assert err.code == "certificate_untrusted"
    assert "key too small" in err.message


def test_signing_certificate_refused(root, anchors, card, now):
    signing = issue_user_cert(
        root, key=card.private_key, signing_profile=True, not_before=now - timedelta(days=1)
    )
    err = pytest.raises(CardError, validate_path, signing.der, anchors, now).value
    assert err.code == "certificate_untrusted"
    assert err.message == (
        "this is the signing certificate, not the user-authentication certificate"
    )


def _issue_custom(root: TestCA, key, now, *, subject=None, ku=None, ku_critical=True, ca=False):
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or x509.Name([
            x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, "ABC"),
        ]))
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=10))
    )
    if ku is not None:
        builder = builder.add_extension(ku, critical=ku_critical)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    return der(builder.sign(root.private_key, hashes.SHA256()))


def _ku(digital_signature=True):
    return x509.KeyUsage(digital_signature, False, False, False, False, False, False, False, False)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"ku": None}, "keyUsage extension missing"),
        ({"ku": _ku(), "ku_critical": False}, "not critical"),
        ({"ku": _ku(False)}, "digitalSignature"),
        ({"ku": _ku(), "ca": True}, "CA certificate"),
        (
            {
                "ku": _ku(),
                "subject": x509.Name([
                    x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "X"),
                    x509.NameAttribute(x509.NameOID.COMMON_NAME, "ABC"),
                ]),
            },
            "other than C and CN",
        ),
        (
            {
                "ku": _ku(),
                "subject": x509.Name([
                    x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(x509.NameOID.LOCALITY_NAME, "Chiyoda-ku"),
                    x509.NameAttribute(x509.NameOID.COMMON_NAME, "ABC"),
                ]),
            },
            "signing certificate",
        ),
    ],
)
def test_profile_refusals(root, anchors, card, now, kwargs, fragment):
    cert_der = _issue_custom(root, card.private_key, now, **kwargs)
    err = pytest.raises(CardError, validate_path, cert_der, anchors, now).value
    assert err.code == "certificate_untrusted"
    assert fragment in err.message


def test_profile_accepts_minimal_cert(root, anchors, card, now):
    validate_path(_issue_custom(root, card.private_key, now, ku=_ku()), anchors, now)


def test_naive_now_is_a_programming_error(card, anchors, now):
    with pytest.raises(ValueError):
        validate_path(card.der, anchors, now.replace(tzinfo=None))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_validate_path_arbitrary_bytes_only_card_error(anchors, now, data):
    with pytest.raises(CardError) as info:
        validate_path(data, anchors, now)
    assert info.value.code in {"invalid_request", "certificate_untrusted"}


@pytest.mark.filterwarnings("ignore:Attribute's length:UserWarning")
@settings(max_examples=300, deadline=None)
@given(st.data())
def test_validate_path_mutated_certificate_only_card_error(card, anchors, now, data):
    raw = bytearray(card.der)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    if bytes(raw) == card.der:
        return
    try:
        validate_path(bytes(raw), anchors, now)
    except CardError as exc:
        assert exc.code in {"invalid_request", "certificate_untrusted",
                            "certificate_expired", "certificate_not_yet_valid"}
    else:
        # Only changes outside the signed part (e.g. in the signature's unused padding
        # region of a BIT STRING) can still verify; the TBS must be unchanged.
        parsed = x509.load_der_x509_certificate(bytes(raw))
        assert parsed.tbs_certificate_bytes == card.certificate.tbs_certificate_bytes
