"""Profile check: is this a JPKI *user-authentication* certificate?

Every card carries two certificates under different CAs, but a cautious verifier must not
rely on the CA alone (a misconfigured anchor set could include the signing CA).  The signing
certificate carries the holder's name, address, birth date and sex (``L=`` in the subject and
a subjectAltName with OIDs 1.2.392.200149.8.5.5.1-6).  Accepting it would make us receive
personal data we must not collect, so it is refused explicitly and recognisably.
"""

from __future__ import annotations

from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from idp.jpki.errors import CardError

MIN_RSA_BITS: Final = 2048
#: Upper bound only to keep verification cost bounded against hostile input.
MAX_RSA_BITS: Final = 8192
#: The four facts (name, birth date, sex, address) and their alternative forms.
FOUR_FACTS_OIDS: Final = frozenset(
    x509.ObjectIdentifier(f"1.2.392.200149.8.5.5.{i}") for i in range(1, 7)
)
_ALLOWED_SUBJECT: Final = frozenset({NameOID.COUNTRY_NAME, NameOID.COMMON_NAME})
_ALLOWED_SIG_HASHES: Final = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_SIGNING_CERT_MSG: Final = (
    "this is the signing certificate, not the user-authentication certificate"
)


def _untrusted(message: str) -> CardError:
    return CardError("certificate_untrusted", message)


def _looks_like_signing_certificate(cert: x509.Certificate) -> bool:
    if cert.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME):
        return True
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    others = san.get_values_for_type(x509.OtherName)
    return any(other.type_id in FOUR_FACTS_OIDS for other in others)


def check_user_auth_profile(cert: x509.Certificate) -> None:
    """Raise ``CardError("certificate_untrusted")`` unless ``cert`` fits the user-auth profile.

    Checks: no personal data (signing-certificate markers, subject only C and CN), RSA key of
    2048-8192 bits, keyUsage present, critical and with digitalSignature, SHA-2 signature.
    Malformed extensions are reported as untrusted too, never as another exception.
    """
    try:
        _check(cert)
    except CardError:
        raise
    except Exception as exc:  # lazily parsed, malformed extensions of a hostile certificate
        raise _untrusted(f"malformed certificate ({type(exc).__name__})") from exc


def _check(cert: x509.Certificate) -> None:
    # Personal-data checks first: their message tells the user which certificate to use.
    if _looks_like_signing_certificate(cert):
        raise _untrusted(_SIGNING_CERT_MSG)
    extra = {attr.oid.dotted_string for attr in cert.subject if attr.oid not in _ALLOWED_SUBJECT}
    if extra:
        raise _untrusted("subject has attributes other than C and CN: " + ", ".join(sorted(extra)))
    if not cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        raise _untrusted("subject has no CN")

    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise _untrusted("certificate key is not RSA")
    if key.key_size < MIN_RSA_BITS:
        raise _untrusted(f"key too small: RSA-{key.key_size}, at least {MIN_RSA_BITS} required")
    if key.key_size > MAX_RSA_BITS:
        raise _untrusted(f"key too large: RSA-{key.key_size}")

    if not isinstance(cert.signature_hash_algorithm, _ALLOWED_SIG_HASHES):
        raise _untrusted("certificate signature algorithm is not RSA with SHA-2")

    try:
        ku_ext = cert.extensions.get_extension_for_class(x509.KeyUsage)
    except x509.ExtensionNotFound as exc:
        raise _untrusted("keyUsage extension missing") from exc
    if not ku_ext.critical:
        raise _untrusted("keyUsage extension is not critical")
    if not ku_ext.value.digital_signature:
        raise _untrusted("keyUsage lacks digitalSignature")

    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is not None and bc.ca:
        raise _untrusted("a CA certificate cannot be used to sign in")
