"""A JPKI-like *test* PKI: root CA, card certificates, CRL and OCSP responder certificate.

Used by unit tests, the benchmark, the virtual card of the bridge tests and the local demo.
The shapes follow the real J-LIS user-authentication CA (see config/jpki/README.md) but the
organisation is ``JPKI-TEST``, exactly like J-LIS's own test cards, so a test anchor can
never be mistaken for a production one.  Private keys are written unencrypted: test only.

Everything here lives in memory; :mod:`idp.jpki.testing.pki_dir` writes a whole test PKI
to a directory (and back), for the demo, the CLI and the virtual card.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from idp.jpki.challenge import signed_message

USER_AUTH_POLICY_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.1.3.30")


def root_name(organization: str = "JPKI-TEST") -> x509.Name:
    """The DN of the (test) user-authentication CA; real generations use ``O=JPKI``."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "JPKI for user authentication"),
            x509.NameAttribute(
                NameOID.ORGANIZATIONAL_UNIT_NAME,
                "Japan Agency for Local Authority Information Systems",
            ),
        ]
    )


def generate_rsa_key(key_size: int = 2048) -> rsa.RSAPrivateKey:
    """RSA key with e=65537 like the card's.  ~50-100 ms for 2048 bits: reuse in tests."""
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def pem_private_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class TestCA:
    """A test root CA (certificate and its private key)."""

    __test__ = False  # not a pytest test class

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class TestCard:
    """A test card: its user-authentication certificate and private key."""

    __test__ = False

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def serial(self) -> str:
        return format(self.certificate.serial_number, "x")

    def sign(self, origin: str, challenge: str) -> bytes:
        """Sign like the card: PKCS#1 v1.5 over the SHA-256 DigestInfo of the message."""
        return self.private_key.sign(
            signed_message(origin, challenge), padding.PKCS1v15(), hashes.SHA256()
        )

    def token(self, origin: str, challenge: str, *, bridge: str = "testpki/1") -> dict:
        """A bridge token (as decoded JSON) for ``origin`` and ``challenge``."""
        import base64

        return {
            "format": "jpki-auth:1",
            "certificate": base64.b64encode(self.der).decode("ascii"),
            "algorithm": "RS256",
            "signature": base64.b64encode(self.sign(origin, challenge)).decode("ascii"),
            "bridge": bridge,
        }


@dataclass(frozen=True)
class TestResponder:
    """A delegated OCSP responder certificate (EKU OCSPSigning) and its key."""

    __test__ = False

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey


def _default_window(
    not_before: datetime | None, not_after: datetime | None, days: int
) -> tuple[datetime, datetime]:
    start = not_before or datetime.now(UTC) - timedelta(days=1)
    return start, not_after or start + timedelta(days=days)


def _ski(key: rsa.RSAPrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def create_root(
    *,
    organization: str = "JPKI-TEST",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key: rsa.RSAPrivateKey | None = None,
    key_size: int = 2048,
) -> TestCA:
    """Create a self-signed root shaped like the J-LIS user-authentication CA (10 years)."""
    key = key or generate_rsa_key(key_size)
    start, end = _default_window(not_before, not_after, 3650)
    name = root_name(organization)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_ski(key), critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.DirectoryName(name)], None, None, None)]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return TestCA(cert, key)


def _utf8string_der(text: str) -> bytes:
    # The only DER we build by hand: the value of a test-only otherName in the *refused*
    # signing-certificate profile.  cryptography has no public encoder for a bare string.
    data = text.encode("utf-8")
    if len(data) > 127:
        raise ValueError("test value too long")
    return bytes([0x0C, len(data)]) + data


def _key_usage(*, digital_signature: bool, content_commitment: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def issue_user_cert(
    root: TestCA,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key_size: int = 2048,
    signing_profile: bool = False,
    key: rsa.RSAPrivateKey | None = None,
    cn: str | None = None,
) -> TestCard:
    """Issue a card certificate: ``C=JP, CN=<opaque id>``, keyUsage digitalSignature.

    ``signing_profile=True`` instead imitates the *signing* certificate (``L=`` and a
    subjectAltName with the four-facts OIDs) so tests can check that it is refused.
    """
    key = key or generate_rsa_key(key_size)
    start, end = _default_window(not_before, not_after, 5 * 365)
    cn = cn or secrets.token_hex(12).upper()
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "JP")]
    if signing_profile:
        attributes += [
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Tokyo-to"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Chiyoda-ku"),
        ]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            _key_usage(digital_signature=True, content_commitment=signing_profile),
            critical=True,
        )
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(USER_AUTH_POLICY_OID, None)]),
            critical=True,
        )
        .add_extension(_ski(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.private_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.DirectoryName(root.certificate.subject)], None, None, None
                    )
                ]
            ),
            critical=False,
        )
    )
    if signing_profile:
        facts = ["TEST TARO", "20000101", "1", "TOKYO CHIYODA 1-1"]
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.OtherName(
                        x509.ObjectIdentifier(f"1.2.392.200149.8.5.5.{i}"), _utf8string_der(v)
                    )
                    for i, v in enumerate(facts, start=1)
                ]
            ),
            critical=False,
        )
    cert = builder.sign(root.private_key, hashes.SHA256())
    return TestCard(cert, key)


def issue_ocsp_responder_cert(
    root: TestCA,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key: rsa.RSAPrivateKey | None = None,
) -> TestResponder:
    """Issue a delegated OCSP responder certificate (EKU OCSPSigning, ocsp-nocheck)."""
    key = key or generate_rsa_key(2048)
    start, end = _default_window(not_before, not_after, 365)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI-TEST"),
            x509.NameAttribute(NameOID.COMMON_NAME, "JPKI-TEST OCSP Responder"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(_ski(key), critical=False)
        .sign(root.private_key, hashes.SHA256())
    )
    return TestResponder(cert, key)


def make_crl(
    root: TestCA,
    revoked_serials: Iterable[int],
    this_update: datetime,
    next_update: datetime,
    *,
    signing_key: rsa.RSAPrivateKey | None = None,
    crl_number: int = 1,
) -> bytes:
    """Return a DER CRL from ``root`` listing ``revoked_serials``.

    ``signing_key`` lets a test sign with the wrong key (the CRL must then be unusable).
    """
    revoked = [
        x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(this_update).build()
        for serial in revoked_serials
    ]
    # Passing the list to the constructor: add_revoked_certificate() copies the list on
    # every call, which is quadratic for the large CRLs the benchmark uses.
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=root.certificate.subject,
        last_update=this_update,
        next_update=next_update,
        extensions=[x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(crl_number))],
        revoked_certificates=revoked,
    )
    crl = builder.sign(signing_key or root.private_key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.DER)
