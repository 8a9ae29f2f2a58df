"""APDUs the bridge may send, and the allow-list that guards the card.

The MyNumber card also carries applications that expose the holder's name, address,
birth date, sex and My Number (券面事項入力補助AP, 券面AP) and a signing certificate that
carries the same facts. Mynagate needs none of that, so the transport refuses every APDU
that is not on this list *before* it reaches the reader: a bug elsewhere (or a hostile
web page talking to the loopback API) cannot turn the bridge into a My Number reader, and
cannot burn the PIN tries of another application.
"""

from __future__ import annotations

JPKI_AP_AID = bytes.fromhex("D392F000260100000001")
# Never selected; listed so tests and reviewers can grep for them.
KENMEN_HOJO_AP_AID = bytes.fromhex("D3921000310001010408")  # 券面事項入力補助AP
KENMEN_AP_AID = bytes.fromhex("D3921000310001010402")  # 券面AP

EF_TOKEN_INFO = 0x0006
EF_AUTH_CERT = 0x000A
EF_AUTH_CA_CERT = 0x000B
EF_AUTH_KEY = 0x0017
EF_AUTH_PIN = 0x0018
ALLOWED_EFS: frozenset[int] = frozenset(
    {EF_TOKEN_INFO, EF_AUTH_CERT, EF_AUTH_CA_CERT, EF_AUTH_KEY, EF_AUTH_PIN}
)

SELECT_JPKI_AP = bytes.fromhex("00A4040C0A") + JPKI_AP_AID
_SELECT_EF_PREFIX = bytes.fromhex("00A4020C02")
_VERIFY_PREFIX = bytes.fromhex("00200080")
_SIGN_PREFIX = bytes.fromhex("802A008033")
SHA256_DIGESTINFO_PREFIX = bytes.fromhex("3031300D060960864801650304020105000420")

MAX_READ_LE = 0xFF


def select_ef(ef: int) -> bytes:
    if ef not in ALLOWED_EFS:
        raise ValueError(f"EF {ef:04X} is not on the allow-list")
    return _SELECT_EF_PREFIX + ef.to_bytes(2, "big")


def read_binary(offset: int, length: int) -> bytes:
    # P1P2 is a 15-bit offset (P1 bit 8 set would mean "short EF id" addressing).
    if not 0 <= offset <= 0x7FFF:
        raise ValueError("offset out of range")
    if not 1 <= length <= MAX_READ_LE:
        raise ValueError("Le must be 1..255")
    return bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, length])


VERIFY_STATUS = _VERIFY_PREFIX  # no data: answers 63Cx, spends no try


def verify(pin: str) -> bytes:
    if not is_valid_pin(pin):
        raise ValueError("the PIN must be exactly 4 digits")
    return _VERIFY_PREFIX + b"\x04" + pin.encode("ascii")


def sha256_digest_info(digest32: bytes) -> bytes:
    if len(digest32) != 32:
        raise ValueError("a SHA-256 digest is 32 bytes")
    return SHA256_DIGESTINFO_PREFIX + digest32


def compute_signature(digest32: bytes) -> bytes:
    return _SIGN_PREFIX + sha256_digest_info(digest32) + b"\x00"


def is_valid_pin(pin: object) -> bool:
    # str.isdigit() accepts "١٢٣٤" and "①"; the card wants ASCII 0-9 only.
    return isinstance(pin, str) and len(pin) == 4 and all("0" <= c <= "9" for c in pin)


def is_allowed(apdu: bytes) -> bool:
    """True only for the exact shapes of the commands listed in the module docstring."""
    if not isinstance(apdu, bytes | bytearray):
        return False
    apdu = bytes(apdu)
    if apdu == SELECT_JPKI_AP:
        return True
    if len(apdu) == 7 and apdu[:5] == _SELECT_EF_PREFIX:
        return int.from_bytes(apdu[5:7], "big") in ALLOWED_EFS
    if len(apdu) == 5 and apdu[:2] == b"\x00\xb0":
        # P1 bit 8 would address a file by short EF identifier, bypassing the EF allow-list.
        return apdu[2] & 0x80 == 0 and apdu[4] != 0
    if apdu == VERIFY_STATUS:
        return True
    if len(apdu) == 9 and apdu[:5] == _VERIFY_PREFIX + b"\x04":
        return all(0x30 <= b <= 0x39 for b in apdu[5:])
    if len(apdu) == 5 + 0x33 + 1 and apdu[:5] == _SIGN_PREFIX:
        return apdu[5 : 5 + len(SHA256_DIGESTINFO_PREFIX)] == SHA256_DIGESTINFO_PREFIX and (
            apdu[-1] == 0x00
        )
    return False


def describe(apdu: bytes) -> str:
    """Short human-readable name for logs; never includes PIN digits."""
    if apdu == SELECT_JPKI_AP:
        return "SELECT JPKI AP"
    if len(apdu) == 7 and apdu[:5] == _SELECT_EF_PREFIX:
        return f"SELECT EF {apdu[5:7].hex().upper()}"
    if len(apdu) == 5 and apdu[:2] == b"\x00\xb0":
        return f"READ BINARY offset={int.from_bytes(apdu[2:4], 'big')} le={apdu[4]}"
    if apdu == VERIFY_STATUS:
        return "VERIFY (tries left)"
    if apdu[:4] == _VERIFY_PREFIX:
        return "VERIFY ****"
    if apdu[:5] == _SIGN_PREFIX:
        return "COMPUTE DIGITAL SIGNATURE"
    return f"APDU {apdu[:4].hex().upper()}… ({len(apdu)} bytes)"
