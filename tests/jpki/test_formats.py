"""Card token formats are dispatched on ``format``: a second format registered here is the one
that parses and checks its tokens, and a format nobody registered is ``invalid_request``."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from idp.jpki import FORMATS, CardError, CardFormat, CardToken, CardVerifier, NoRevocation
from idp.jpki.formats.fields import b64decode, require_fields
from idp.jpki.token import parse_token

from .conftest import CHALLENGE, ORIGIN

PHONE = "phone-test:1"


def phone_message(origin: str, challenge: str) -> bytes:
    return hashlib.sha256(f"{origin}\n{challenge}".encode()).digest()


def parse_phone(data) -> CardToken:
    """A made-up smartphone format: other field names, SHA-512 over another message."""
    require_fields(data, frozenset({"format", "cert", "sig"}))
    return CardToken(format=PHONE, certificate_der=b64decode(data["cert"], "cert", 16384),
                     signature=b64decode(data["sig"], "sig", 1024), algorithm="PS512",
                     bridge="phone")


def verify_phone(certificate: x509.Certificate, token: CardToken, origin: str,
                 challenge: str) -> None:
    try:
        certificate.public_key().verify(
            token.signature, phone_message(origin, challenge),
            padding.PSS(padding.MGF1(hashes.SHA512()), padding.PSS.MAX_LENGTH), hashes.SHA512())
    except InvalidSignature as exc:
        raise CardError("signature_invalid") from exc


PHONE_FORMAT = CardFormat(PHONE, parse_phone, verify_phone)


def phone_token(card, origin: str = ORIGIN, challenge: str = CHALLENGE) -> dict:
    sig = card.private_key.sign(
        phone_message(origin, challenge),
        padding.PSS(padding.MGF1(hashes.SHA512()), padding.PSS.MAX_LENGTH), hashes.SHA512())
    return {"format": PHONE, "cert": base64.b64encode(card.der).decode(),
            "sig": base64.b64encode(sig).decode()}


@pytest.fixture
def with_phone() -> dict[str, CardFormat]:
    return {**FORMATS, PHONE: PHONE_FORMAT}


def test_registered_second_format_is_dispatched_to(card, anchors, now, with_phone):
    token = parse_token(phone_token(card), with_phone)
    assert token.format == PHONE and token.algorithm == "PS512"
    verifier = CardVerifier(anchors, NoRevocation(), with_phone)
    result = verifier.verify(token, ORIGIN, CHALLENGE, now)
    assert result.certificate_sha256 == hashlib.sha256(card.der).hexdigest()
    # The phone format's own check ran: a phone signature for another challenge fails it.
    other = parse_token(phone_token(card, challenge="another"), with_phone)
    with pytest.raises(CardError) as info:
        verifier.verify(other, ORIGIN, CHALLENGE, now)
    assert info.value.code == "signature_invalid"


def test_jpki_auth_is_still_dispatched_beside_the_second_format(card, anchors, now, with_phone):
    token = parse_token(card.token(ORIGIN, CHALLENGE), with_phone)
    assert token.format == "jpki-auth:1"
    assert CardVerifier(anchors, NoRevocation(), with_phone).verify(token, ORIGIN, CHALLENGE, now)


def test_unknown_format_is_refused_as_invalid_request(card):
    with pytest.raises(CardError) as info:
        parse_token(phone_token(card))  # the production registry does not know it
    assert info.value.code == "invalid_request"
    assert "unsupported token format" in info.value.message


def test_production_verifier_refuses_a_token_of_a_format_it_does_not_know(
        card, anchors, now, with_phone):
    """Abuse: a token parsed under a wider registry (a lax test format, a future one) must
    not be checked by the production verifier's rules, nor slip through unchecked."""
    token = parse_token(phone_token(card), with_phone)
    with pytest.raises(CardError) as info:
        CardVerifier(anchors, NoRevocation()).verify(token, ORIGIN, CHALLENGE, now)
    assert info.value.code == "invalid_request"


@pytest.mark.parametrize("value", [None, ["jpki-auth:1"], {"jpki-auth:1": 1}, 1, "",
                                   "x" * 65, "jpki-auth:1" * 100])
def test_hostile_format_values_are_invalid_requests(card, value, with_phone):
    """Abuse: a hostile page posts a format that is unhashable, empty or huge."""
    token = {**card.token(ORIGIN, CHALLENGE), "format": value}
    with pytest.raises(CardError) as info:
        parse_token(token, with_phone)
    assert info.value.code == "invalid_request"


def test_jpki_auth_fields_are_refused_under_the_phone_format(card, with_phone):
    """Each format parses its own shape: jpki-auth fields under the phone name are refused."""
    token = {**card.token(ORIGIN, CHALLENGE), "format": PHONE}
    with pytest.raises(CardError) as info:
        parse_token(token, with_phone)
    assert info.value.code == "invalid_request"
