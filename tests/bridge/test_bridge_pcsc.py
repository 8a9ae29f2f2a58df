"""The driver against the simulator over REAL PC/SC: pyscard -> pcscd -> vpcd -> simulator."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from bridge_helpers import EMPTY_READER, PIN, PkiCard, Sim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from card_bridge import apdu
from card_bridge.card import JpkiCard, PcscTransport, TokenKind, pcsc_status
from card_bridge.errors import (
    CardRemoved,
    LastTryNotConfirmed,
    NoCard,
    NoReader,
    NotVerified,
    PinBlocked,
    ReaderBusy,
    WrongPin,
)
from card_bridge.sim.model import CERT_EF_MIN_SIZE
from card_bridge.token import message_digest, signed_message

pytestmark = pytest.mark.pcsc

KENMEN_AIDS = (apdu.KENMEN_HOJO_AP_AID, apdu.KENMEN_AP_AID)


def assert_only_allowed(sim: Sim) -> None:
    assert sim.card.received, "the simulator received nothing"
    for c in sim.card.received:
        assert apdu.is_allowed(c), f"non-allow-listed APDU reached the card: {c.hex()}"
        assert not any(aid in c for aid in KENMEN_AIDS)
        if c[:5] == bytes.fromhex("00A4020C02"):
            assert int.from_bytes(c[5:7], "big") not in (0x0001, 0x0002, 0x001A, 0x001B)


def test_status_sees_the_card(sim: Sim) -> None:
    st = pcsc_status()
    assert st.pcsc == "ok"
    assert sim.reader in st.readers_with_card
    assert EMPTY_READER not in st.readers_with_card


def test_read_certificate_exactly(sim: Sim, test_card: PkiCard) -> None:
    with PcscTransport() as t:  # first reader with a card
        assert t.reader == sim.reader
        card = JpkiCard(t)
        card.select_jpki_ap()
        assert card.token_kind() is TokenKind.PLASTIC
        cert = card.read_auth_certificate()
    # Exactly the DER, though the card's file is longer, with FF filler after it. (Not
    # "does not end in FF": the DER's last byte is its signature's, and may be FF.)
    assert cert == test_card.cert_der
    assert len(cert) < CERT_EF_MIN_SIZE
    assert_only_allowed(sim)


def test_tries_left_spends_nothing(sim: Sim) -> None:
    with PcscTransport(sim.reader) as t:
        card = JpkiCard(t)
        card.select_jpki_ap()
        assert card.pin_tries_left() == 3
        assert card.pin_tries_left() == 3
    assert sim.card.tries_left == 3


def test_wrong_pin_then_last_try_refusal_then_lockout(sim: Sim) -> None:
    with PcscTransport(sim.reader) as t:
        card = JpkiCard(t)
        card.select_jpki_ap()
        with pytest.raises(WrongPin) as e:
            card.verify_pin("0000")
        assert e.value.tries_left == 2
        with pytest.raises(WrongPin) as e:
            card.verify_pin("0001")
        assert e.value.tries_left == 1
        assert card.pin_tries_left() == 1
        n = len(sim.card.received)
        with pytest.raises(LastTryNotConfirmed):
            card.verify_pin(PIN)  # not confirmed: the last try is not spent
        assert not [c for c in sim.card.received[n:] if len(c) == 9 and c[1] == 0x20]
        assert sim.card.tries_left == 1
        with pytest.raises(PinBlocked):
            card.verify_pin("0002", confirmed_last_try=True)  # 63C0
        assert card.pin_tries_left() == 0
    # blocked forever: across power cycles, even with the right PIN (card says 6984)
    sim.remove()
    sim.insert()
    with PcscTransport(sim.reader) as t:
        card = JpkiCard(t)
        card.select_jpki_ap()
        assert card.pin_tries_left() == 0
        with pytest.raises(PinBlocked) as e:
            card.verify_pin(PIN, confirmed_last_try=True)
        assert e.value.code == "pin_blocked"
        # the raw card answer, sent through the real stack
        _, sw = t.transmit(apdu.verify(PIN))
        assert sw == 0x6984
    assert sim.card.tries_left == 0
    assert_only_allowed(sim)


def test_sign_verifies_with_certificate_key(sim: Sim, test_card: PkiCard) -> None:
    origin, challenge = "https://id.example.ed.jp", "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg"
    with PcscTransport(sim.reader) as t:
        card = JpkiCard(t)
        card.select_jpki_ap()
        with pytest.raises(NotVerified):
            card.sign_sha256_digest(message_digest(origin, challenge))  # 6982
        card.verify_pin(PIN)
        sig = card.sign_sha256_digest(message_digest(origin, challenge))
    assert len(sig) == 256
    test_card.public_key.verify(
        sig, signed_message(origin, challenge), padding.PKCS1v15(), hashes.SHA256()
    )
    assert_only_allowed(sim)


def test_full_authenticate_plastic(sim: Sim, test_card: PkiCard) -> None:
    asked: list[tuple[int, bool]] = []
    with PcscTransport(sim.reader) as t:
        res = JpkiCard(t).authenticate(
            bytes(32), lambda tries, last: asked.append((tries, last)) or PIN
        )
    assert asked == [(3, False)]
    assert res.certificate == test_card.cert_der
    # plastic: certificate read BEFORE the PIN was verified
    kinds = [apdu.describe(c) for c in sim.card.received]
    assert kinds.index("SELECT EF 000A") < kinds.index("VERIFY ****")
    assert_only_allowed(sim)


def test_android_order(make_sim: Callable[..., Sim], test_card: PkiCard) -> None:
    sim = make_sim(token="android")
    with PcscTransport(sim.reader) as t:
        card = JpkiCard(t)
        card.select_jpki_ap()
        assert card.token_kind() is TokenKind.ANDROID
        with pytest.raises(NotVerified):
            card.read_auth_certificate()
    with PcscTransport(sim.reader) as t:
        res = JpkiCard(t).authenticate(bytes(32), lambda tries, last: PIN)
    assert res.certificate == test_card.cert_der
    assert res.token_kind is TokenKind.ANDROID
    assert_only_allowed(sim)


def test_card_removed_mid_way(sim: Sim) -> None:
    with PcscTransport(sim.reader) as t:
        card = JpkiCard(t)
        card.select_jpki_ap()
        sim.client.remove_after(3)  # SELECT EF, header, first chunk ... then gone
        with pytest.raises(CardRemoved) as e:
            card.read_auth_certificate()
        assert e.value.code == "card_removed"


@pytest.mark.usefixtures("pcsc_reader")
def test_no_card_in_named_reader() -> None:
    with pytest.raises(NoCard) as e:
        PcscTransport(EMPTY_READER).connect()
    assert e.value.code == "no_card"


def test_no_card_anywhere(pcsc_reader: str, make_sim: Callable[..., Sim]) -> None:
    # the make_sim lock guarantees nobody else's simulator is in the reader right now
    if pcsc_status().readers_with_card:
        pytest.skip("a real or other card is present")
    with pytest.raises(NoCard):
        PcscTransport().connect()


@pytest.mark.usefixtures("pcsc_reader")
def test_unknown_reader() -> None:
    with pytest.raises(NoReader) as e:
        PcscTransport("No Such Reader 99").connect()
    assert e.value.code == "no_reader"


def test_reader_busy_when_another_app_holds_it(sim: Sim) -> None:
    with PcscTransport(sim.reader):
        with pytest.raises(ReaderBusy) as e:
            PcscTransport(sim.reader).connect()
        assert e.value.code == "reader_busy"


def test_pin_state_does_not_survive_disconnect(sim: Sim) -> None:
    with PcscTransport(sim.reader) as t:
        card = JpkiCard(t)
        card.select_jpki_ap()
        card.verify_pin(PIN)
    # our close() resets the card: the next application starts unverified
    with PcscTransport(sim.reader) as t:
        card = JpkiCard(t)
        card.select_jpki_ap()
        with pytest.raises(NotVerified):
            card.sign_sha256_digest(bytes(32))


def test_concurrent_transmits_are_serialised(sim: Sim) -> None:
    errors: list[BaseException] = []
    with PcscTransport(sim.reader) as t:
        JpkiCard(t).select_jpki_ap()

        def worker() -> None:
            try:
                for _ in range(5):
                    _, sw = t.transmit(apdu.select_ef(apdu.EF_TOKEN_INFO))
                    assert sw == 0x9000
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert not errors


def test_simulate_cli_with_provider_test_pki(pcsc_reader: str, make_sim, tmp_path) -> None:
    """`card-bridge simulate` as its own process, holding a card of the provider's test PKI;
    the token is then checked by the provider's independent verifier."""
    pki_dir = pytest.importorskip("idp.jpki.testing.pki_dir")
    challenge_mod = pytest.importorskip("idp.jpki.challenge")
    token_mod = pytest.importorskip("idp.jpki.token")
    import base64
    import subprocess
    import sys

    from bridge_helpers import wait_for
    from cryptography import x509

    from card_bridge.token import build_token

    # make_sim is requested only for its cross-process vpcd lock; no simulator is started.
    pki_dir.write_test_pki(tmp_path, 1)
    state = tmp_path / "tries.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "card_bridge.cli", "simulate",
         "--cert", str(tmp_path / "card-1-cert.der"), "--key", str(tmp_path / "card-1-key.pem"),
         "--pin", "4321", "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert wait_for(lambda: pcsc_reader in pcsc_status().readers_with_card, 15), (
            proc.stderr.read() if proc.poll() is not None else "card never appeared"
        )
        origin, challenge = "https://id.example.ed.jp", challenge_mod.new_challenge()
        with PcscTransport(pcsc_reader) as t, pytest.raises(WrongPin):
            JpkiCard(t).authenticate(message_digest(origin, challenge), lambda n, last: "0000")
        with PcscTransport(pcsc_reader) as t:
            res = JpkiCard(t).authenticate(
                message_digest(origin, challenge), lambda n, last: "4321"
            )
        token = build_token(res.certificate, res.signature, "test")
        parsed = token_mod.parse_token(token)
        cert = x509.load_der_x509_certificate(base64.b64decode(token["certificate"]))
        challenge_mod.verify_signature(cert, parsed.signature, origin, challenge)
        assert (tmp_path / "card-1-cert.der").read_bytes() == res.certificate
    finally:
        proc.terminate()
        proc.wait(10)
        wait_for(lambda: pcsc_reader not in pcsc_status().readers_with_card, 10)
    # the counter was persisted by the simulator process: 1 wrong, then reset by the good PIN
    assert '"tries_left": 3' in state.read_text()
