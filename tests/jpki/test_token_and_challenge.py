import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import given, settings
from hypothesis import strategies as st

from idp.jpki import CODES, CardError, new_challenge, parse_token, signed_message
from idp.jpki.formats.jpki_auth import MAX_CERTIFICATE_BYTES

from .conftest import CHALLENGE, ORIGIN


def good_token(**overrides):
    token = {
        "format": "jpki-auth:1",
        "certificate": base64.b64encode(b"\x30\x82\x01\x00cert").decode(),
        "algorithm": "RS256",
        "signature": base64.b64encode(b"\x01" * 256).decode(),
        "bridge": "mynagate-bridge/0.1.0",
    }
    token.update(overrides)
    return token


def test_error_codes_are_closed():
    assert CardError("signature_invalid").code == "signature_invalid"
    assert len(CODES) == 12  # card_replaced: the old card of a renewed pair (issue 11)
    with pytest.raises(ValueError):
        CardError("no_such_code")


def test_parse_good_token():
    token = parse_token(good_token())
    assert token.certificate_der == b"\x30\x82\x01\x00cert"
    assert token.signature == b"\x01" * 256
    assert token.algorithm == "RS256"
    assert token.bridge == "mynagate-bridge/0.1.0"
    with pytest.raises(AttributeError):
        token.bridge = "x"  # frozen


def test_parse_accepts_base64url_unpadded():
    der = bytes(range(250, 256)) + b"\xfb\xff\xfe"
    encoded = base64.urlsafe_b64encode(der).decode().rstrip("=")
    assert "-" in encoded or "_" in encoded
    assert parse_token(good_token(certificate=encoded)).certificate_der == der


@pytest.mark.parametrize(
    "change",
    [
        {"format": "jpki-auth:2"},
        {"format": None},
        {"algorithm": "PS256"},
        {"algorithm": "rs256"},
        {"certificate": "not base64!"},
        {"certificate": ""},
        {"certificate": "QQ="},  # wrong padding
        {"certificate": "Q"},
        {"certificate": "+-/_"},  # mixed alphabets
        {"certificate": "QUJD\n"},
        {"certificate": 12},
        {"certificate": base64.b64encode(b"x" * (MAX_CERTIFICATE_BYTES + 1)).decode()},
        {"signature": ["a"]},
        {"signature": base64.b64encode(b"s" * 2000).decode()},
        {"bridge": ""},
        {"bridge": "x" * 101},
        {"bridge": "bridge/1\n"},
        {"bridge": "ブリッジ/1"},
        {"bridge": 1},
        {"extra": "field"},
    ],
)
def test_parse_refuses_malformed(change):
    with pytest.raises(CardError) as info:
        parse_token(good_token(**change))
    assert info.value.code == "invalid_request"


@pytest.mark.parametrize("field", ["format", "certificate", "algorithm", "signature", "bridge"])
def test_parse_refuses_missing_field(field):
    token = good_token()
    del token[field]
    with pytest.raises(CardError) as info:
        parse_token(token)
    assert info.value.code == "invalid_request"


def test_parse_max_size_certificate_is_accepted():
    der = b"\x30" * MAX_CERTIFICATE_BYTES
    assert parse_token(good_token(certificate=base64.b64encode(der).decode())).certificate_der


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=10,
)
token_like = st.fixed_dictionaries(
    {},
    optional={
        "format": st.sampled_from(["jpki-auth:1", "jpki-auth:0"]) | json_values,
        "certificate": st.text(alphabet="AQZaz09+/-_=\n ", max_size=40) | json_values,
        "algorithm": st.sampled_from(["RS256", "ES256"]) | json_values,
        "signature": st.text(alphabet="AQZaz09+/-_=", max_size=40) | json_values,
        "bridge": st.text(max_size=120) | json_values,
        "extra": json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(json_values, token_like, st.binary(), st.dictionaries(st.integers(), st.text())))
def test_parse_token_only_raises_card_error(data):
    try:
        token = parse_token(data)
    except CardError as exc:
        assert exc.code == "invalid_request"
    else:
        assert token.certificate_der and token.signature


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=300), st.binary(min_size=1, max_size=300),
       st.text(min_size=1, max_size=100).filter(lambda s: s.isascii() and s.isprintable()))
def test_parse_token_roundtrip(cert, sig, bridge):
    data = json.loads(json.dumps(good_token(
        certificate=base64.b64encode(cert).decode(),
        signature=base64.urlsafe_b64encode(sig).decode().rstrip("="),
        bridge=bridge,
    )))
    token = parse_token(data)
    assert (token.certificate_der, token.signature, token.bridge) == (cert, sig, bridge)


def test_signed_message_layout():
    msg = signed_message(ORIGIN, CHALLENGE)
    assert len(msg) == 64
    assert msg[:32] == hashlib.sha256(ORIGIN.encode()).digest()
    assert msg[32:] == hashlib.sha256(CHALLENGE.encode()).digest()


def test_new_challenge_shape():
    values = {new_challenge() for _ in range(50)}
    assert len(values) == 50
    for v in values:
        assert len(v) == 43 and "=" not in v
        assert len(base64.urlsafe_b64decode(v + "=")) == 32


def test_card_signature_equals_digestinfo_signature(card):
    """What the card computes (raw RSA over the DigestInfo) is the ordinary signature."""
    msg = signed_message(ORIGIN, CHALLENGE)
    normal = card.private_key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    from cryptography.hazmat.primitives.asymmetric import utils

    prehashed = card.private_key.sign(
        hashlib.sha256(msg).digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
    )
    assert normal == prehashed
