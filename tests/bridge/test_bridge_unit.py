"""Pure tests: APDU allow-list, status-word mapping, token, JpkiCard over a fake transport."""

from __future__ import annotations

import base64
import hashlib

import pytest
from bridge_helpers import PIN, PkiCard, SimTransport
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import given
from hypothesis import strategies as st

from card_bridge import apdu
from card_bridge.card import JpkiCard, TokenKind, raise_for_sw
from card_bridge.errors import (
    ERROR_CODES,
    ApduNotAllowed,
    Cancelled,
    CardError,
    CardFailure,
    InvalidPinFormat,
    LastTryNotConfirmed,
    NotMyNumberCard,
    NotVerified,
    PinBlocked,
    WrongPin,
)
from card_bridge.origins import is_valid_challenge, normalize_origin
from card_bridge.sim import VirtualJpkiCard
from card_bridge.token import build_token, message_digest, signed_message

H = bytes.fromhex


# --- allow-list ----------------------------------------------------------------------
ALLOWED = [
    H("00A4040C0AD392F000260100000001"),
    *(H("00A4020C02") + ef.to_bytes(2, "big") for ef in (0x0006, 0x000A, 0x000B, 0x0017, 0x0018)),
    H("00B0000004"),
    H("00B00104FF"),
    H("00200080"),
    H("0020008004") + b"1234",
    H("802A008033") + apdu.SHA256_DIGESTINFO_PREFIX + bytes(32) + b"\x00",
]
REFUSED = [
    H("00A4040C0AD3921000310001010408"),  # 券面事項入力補助AP
    H("00A4040C0AD3921000310001010402"),  # 券面AP
    H("00A4040C0AD392F000260100000002"),
    H("00A4040C0AD392F00026010000000100"),  # trailing byte
    *(H("00A4020C02") + ef.to_bytes(2, "big") for ef in (0x0001, 0x0002, 0x001A, 0x001B)),
    H("00B0800004"),  # short-EF addressing bypasses SELECT EF
    H("00B0000000"),
    H("00B00000"),
    H("0020008004") + b"12a4",
    H("0020008006") + b"123456",
    H("0020008104") + b"1234",  # another PIN reference
    H("802A008033") + H("3021300906052B0E03021A05000414") + bytes(36) + b"\x00",  # SHA-1
    H("802A008033") + apdu.SHA256_DIGESTINFO_PREFIX + bytes(32) + b"\x01",
    H("80CA000000"),
    H("00D6000001FF"),  # UPDATE BINARY
    b"",
]


@pytest.mark.parametrize("cmd", ALLOWED, ids=lambda c: c.hex()[:14])
def test_allow_list_accepts(cmd: bytes) -> None:
    assert apdu.is_allowed(cmd)


@pytest.mark.parametrize("cmd", REFUSED, ids=lambda c: c.hex()[:14] or "empty")
def test_allow_list_refuses(cmd: bytes) -> None:
    assert not apdu.is_allowed(cmd)


@given(st.binary(min_size=0, max_size=12))
def test_no_other_aid_is_ever_selectable(aid: bytes) -> None:
    cmd = H("00A4040C") + bytes([len(aid)]) + aid
    assert apdu.is_allowed(cmd) == (aid == apdu.JPKI_AP_AID)


@given(st.binary(min_size=2, max_size=2))
def test_only_listed_efs(ef: bytes) -> None:
    cmd = H("00A4020C02") + ef
    assert apdu.is_allowed(cmd) == (int.from_bytes(ef, "big") in apdu.ALLOWED_EFS)


def test_builders_match_spec() -> None:
    assert apdu.select_ef(0x000A) == H("00A4020C02000A")
    assert apdu.read_binary(0x0104, 0xFF) == H("00B00104FF")
    assert apdu.verify("0042") == H("002000800430303432")
    with pytest.raises(ValueError):
        apdu.select_ef(0x001A)
    with pytest.raises(ValueError):
        apdu.verify("12345")
    assert not apdu.is_valid_pin("١٢٣٤")  # Arabic-Indic digits are not ASCII digits


def test_describe_never_shows_pin() -> None:
    assert "1234" not in apdu.describe(apdu.verify("1234"))


# --- status words --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sw", "exc", "code"),
    [
        (0x63C2, WrongPin, "wrong_pin"),
        (0x63C1, WrongPin, "wrong_pin"),
        (0x63C0, PinBlocked, "pin_blocked"),
        (0x6983, PinBlocked, "pin_blocked"),
        (0x6984, PinBlocked, "pin_blocked"),
        (0x6982, NotVerified, "not_verified"),
        (0x6A82, CardFailure, "card_failure"),
        (0x6F00, CardFailure, "card_failure"),
    ],
)
def test_sw_mapping(sw: int, exc: type[CardError], code: str) -> None:
    with pytest.raises(exc) as info:
        raise_for_sw(sw)
    assert info.value.code == code
    assert info.value.message_en and info.value.message_ja


def test_sw_tries_and_not_mynumber() -> None:
    with pytest.raises(WrongPin) as info:
        raise_for_sw(0x63C2)
    assert info.value.tries_left == 2
    assert info.value.to_dict()["tries_left"] == 2
    with pytest.raises(NotMyNumberCard):
        raise_for_sw(0x6A82, selecting_ap=True)
    raise_for_sw(0x9000)


def test_pin_blocked_message_sends_to_city_office() -> None:
    e = PinBlocked()
    assert "city office" in e.message_en
    assert "市役所・区役所でPINの再設定をしてもらってね" in e.message_ja


def test_every_error_class_has_a_known_code() -> None:
    import card_bridge.errors as E

    for obj in vars(E).values():
        if isinstance(obj, type) and issubclass(obj, CardError):
            assert obj.code in ERROR_CODES


# --- token ---------------------------------------------------------------------------
def test_signed_message_layout() -> None:
    m = signed_message("https://id.example.ed.jp", "abc")
    assert len(m) == 64
    assert m[:32] == hashlib.sha256(b"https://id.example.ed.jp").digest()
    assert m[32:] == hashlib.sha256(b"abc").digest()
    assert message_digest("https://id.example.ed.jp", "abc") == hashlib.sha256(m).digest()
    # utf-8, not latin-1
    assert (
        signed_message("https://学校.jp", "x")[:32]
        == hashlib.sha256("https://学校.jp".encode()).digest()
    )


def test_build_token_shape() -> None:
    t = build_token(b"\x30\x82\x00\x00", b"\x01" * 256, "1.2.3")
    assert t == {
        "format": "jpki-auth:1",
        "certificate": base64.b64encode(b"\x30\x82\x00\x00").decode(),
        "algorithm": "RS256",
        "signature": base64.b64encode(b"\x01" * 256).decode(),
        "bridge": "mynagate-card-bridge/1.2.3",
    }


# --- JpkiCard over the in-process simulator ------------------------------------------
def test_read_certificate_exact(vcard: VirtualJpkiCard, test_card: PkiCard) -> None:
    card = JpkiCard(SimTransport(vcard))
    card.select_jpki_ap()
    assert card.token_kind() is TokenKind.PLASTIC
    assert card.read_auth_certificate() == test_card.cert_der
    reads = [c for c in vcard.received if c[:2] == b"\x00\xb0"]
    cert_reads = reads[1:]  # reads[0] is EF 0006
    assert cert_reads[0] == H("00B0000004")  # header first
    assert sum(c[4] for c in cert_reads) == len(test_card.cert_der)  # no filler read


def test_full_authenticate_signature_verifies(vcard: VirtualJpkiCard, test_card: PkiCard) -> None:
    asked: list[tuple[int, bool]] = []

    def pin(tries: int, last: bool) -> str:
        asked.append((tries, last))
        return PIN

    origin, challenge = "https://id.example.ed.jp", "A" * 43
    res = JpkiCard(SimTransport(vcard)).authenticate(message_digest(origin, challenge), pin)
    assert asked == [(3, False)]
    assert res.certificate == test_card.cert_der
    test_card.public_key.verify(
        res.signature, signed_message(origin, challenge), padding.PKCS1v15(), hashes.SHA256()
    )
    assert all(apdu.is_allowed(c) for c in vcard.received)


def test_android_order(test_card: PkiCard) -> None:
    vc = VirtualJpkiCard(test_card.cert_der, test_card.key, PIN, token="android")
    card = JpkiCard(SimTransport(vc))
    card.select_jpki_ap()
    assert card.token_kind() is TokenKind.ANDROID
    with pytest.raises(NotVerified):
        card.read_auth_certificate()
    res = JpkiCard(SimTransport(vc)).authenticate(bytes(32), lambda t, last: PIN)
    assert res.certificate == test_card.cert_der
    assert res.token_kind is TokenKind.ANDROID


def test_wrong_pin_is_not_retried_and_last_try_needs_confirmation(vcard: VirtualJpkiCard) -> None:
    card = JpkiCard(SimTransport(vcard))
    card.select_jpki_ap()
    with pytest.raises(WrongPin) as e:
        card.authenticate(bytes(32), lambda t, last: "0000")
    assert e.value.tries_left == 2
    verifies = [c for c in vcard.received if c[:4] == H("00200080") and len(c) > 4]
    assert len(verifies) == 1  # never retried on its own
    with pytest.raises(WrongPin):
        card.verify_pin("0000")
    assert vcard.tries_left == 1
    before = len(vcard.received)
    with pytest.raises(LastTryNotConfirmed):
        card.verify_pin(PIN)
    assert not any(len(c) > 4 and c[:4] == H("00200080") for c in vcard.received[before:])
    assert vcard.tries_left == 1
    # authenticate tells the prompt it is the last try, and only then may it be spent
    seen: list[bool] = []
    JpkiCard(SimTransport(vcard)).authenticate(bytes(32), lambda t, last: seen.append(last) or PIN)
    assert seen == [True]
    assert vcard.tries_left == 3


def test_invalid_pin_format_sends_nothing(vcard: VirtualJpkiCard) -> None:
    card = JpkiCard(SimTransport(vcard))
    for bad in ("123", "12345", "12a4", "", "１２３４"):
        with pytest.raises(InvalidPinFormat):
            card.verify_pin(bad)
    assert vcard.received == []


def test_cancelled(vcard: VirtualJpkiCard) -> None:
    with pytest.raises(Cancelled) as e:
        JpkiCard(SimTransport(vcard)).authenticate(bytes(32), lambda t, last: None)
    assert e.value.code == "cancelled"
    assert vcard.tries_left == 3


def test_blocked_forever(vcard: VirtualJpkiCard) -> None:
    card = JpkiCard(SimTransport(vcard))
    card.select_jpki_ap()
    for expect in (2, 1):
        with pytest.raises(WrongPin) as e:
            card.verify_pin("0000", confirmed_last_try=True)
        assert e.value.tries_left == expect
    with pytest.raises(PinBlocked):
        card.verify_pin("0000", confirmed_last_try=True)
    assert card.pin_tries_left() == 0
    # From now on the card answers 6984 even to the right PIN; the driver refuses early.
    assert vcard.process(apdu.select_ef(apdu.EF_AUTH_PIN))[-2:] == H("9000")
    assert vcard.process(apdu.verify(PIN))[-2:] == H("6984")
    with pytest.raises(PinBlocked):
        card.verify_pin(PIN, confirmed_last_try=True)
    with pytest.raises(PinBlocked):
        JpkiCard(SimTransport(vcard)).authenticate(bytes(32), lambda t, last: PIN)


def test_sign_without_verify_is_6982(vcard: VirtualJpkiCard) -> None:
    card = JpkiCard(SimTransport(vcard))
    card.select_jpki_ap()
    with pytest.raises(NotVerified):
        card.sign_sha256_digest(bytes(32))


def test_other_aid_is_6a82_and_not_mynumber(vcard: VirtualJpkiCard) -> None:
    assert vcard.process(H("00A4040C0AD3921000310001010408"))[-2:] == H("6A82")

    class Foreign:
        def transmit(self, c: bytes) -> tuple[bytes, int]:
            return b"", 0x6A82

    with pytest.raises(NotMyNumberCard) as e:
        JpkiCard(Foreign()).select_jpki_ap()
    assert e.value.code == "not_mynumber_card"


def test_read_past_end_is_6b00(vcard: VirtualJpkiCard) -> None:
    vcard.process(apdu.SELECT_JPKI_AP)
    vcard.process(apdu.select_ef(apdu.EF_AUTH_CERT))
    assert vcard.process(apdu.read_binary(0x7F00, 4)) == H("6B00")
    # the EF continues with FF filler after the certificate
    n = len(vcard.cert_der)
    assert vcard.process(apdu.read_binary(n, 4)) == b"\xff" * 4 + H("9000")


def test_transport_never_sees_refused_apdu() -> None:
    sent: list[bytes] = []

    class Spy:
        def transmit(self, c: bytes) -> tuple[bytes, int]:
            sent.append(c)
            return b"", 0x9000

    card = JpkiCard(Spy())
    with pytest.raises(ApduNotAllowed):
        card._send(H("00A4040C0AD3921000310001010408"))
    assert sent == []


def test_state_file_persists_tries(tmp_path, test_card: PkiCard) -> None:
    state = tmp_path / "card.json"
    vc = VirtualJpkiCard(test_card.cert_der, test_card.key, PIN, state_file=state)
    card = JpkiCard(SimTransport(vc))
    card.select_jpki_ap()
    with pytest.raises(WrongPin):
        card.verify_pin("9999")
    vc2 = VirtualJpkiCard(test_card.cert_der, test_card.key, PIN, state_file=state)
    assert vc2.tries_left == 2


# --- origins / challenges ------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("https://ID.Example.ed.jp", "https://id.example.ed.jp"),
        ("https://id.example:443", "https://id.example"),
        ("https://id.example:8443/", "https://id.example:8443"),
        ("http://localhost:5000", "http://localhost:5000"),
        ("http://127.0.0.1", "http://127.0.0.1"),
    ],
)
def test_normalize_origin(raw: str, norm: str) -> None:
    assert normalize_origin(raw) == norm


@pytest.mark.parametrize(
    "raw", ["http://id.example", "https://id.example/path", "null", "ftp://x", "https://u@x"]
)
def test_normalize_origin_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_origin(raw)


def test_challenge_rules() -> None:
    assert is_valid_challenge("a" * 43)
    assert is_valid_challenge(base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("="))
    assert not is_valid_challenge("a" * 42)
    assert not is_valid_challenge("a" * 42 + "=")
    assert not is_valid_challenge("a" * 42 + "+")
    assert not is_valid_challenge(None)
    assert not is_valid_challenge("a" * 513)
