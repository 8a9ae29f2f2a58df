"""Fixtures for the card bridge: a test PKI, an in-process fake transport, and the real
PC/SC path (pcscd + vpcd + the simulator).

PC/SC fixtures:
  pcsc_reader  (session)  runs scripts/pcsc-up.sh when root, else checks pcscd; returns
                          the vpcd reader name ("Virtual PCD 00 00").
  make_sim     (function) factory: make_sim(token="plastic", tries_left=3, ...) starts a
                          VirtualJpkiCard connected to vpcd and waits until pyscard sees it;
                          stops it (card removed) at teardown.
  sim          (function) make_sim() with the defaults.
With CI=true a missing pcscd/vpcd/Xvfb FAILS instead of skipping.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bridge_helpers import (
    PIN,
    REPO,
    VPCD_PORT,
    VPCD_READER,
    FakeProvider,
    PkiCard,
    Sim,
    unavailable,
    wait_for,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from card_bridge.sim import VirtualJpkiCard, VpcdCardClient


@pytest.fixture(scope="session")
def test_card(tmp_path_factory: pytest.TempPathFactory) -> PkiCard:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.COMMON_NAME, "TESTCARD0001AUTH"),
        ]
    )
    issuer = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI-TEST"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "JPKI for user authentication"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("pki")
    der = cert.public_bytes(serialization.Encoding.DER)
    (d / "card-1-cert.der").write_bytes(der)
    (d / "card-1-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return PkiCard(der, key, d / "card-1-cert.der", d / "card-1-key.pem")


@pytest.fixture
def vcard(test_card: PkiCard) -> VirtualJpkiCard:
    return VirtualJpkiCard(test_card.cert_der, test_card.key, PIN)


# ----------------------------------------------------------------------------------------
# PC/SC
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pcsc_reader() -> str:
    try:
        from card_bridge.card import pcsc_status
    except ImportError:  # pragma: no cover
        unavailable("pyscard is not installed")
    script = REPO / "scripts" / "pcsc-up.sh"
    if os.geteuid() == 0 and shutil.which("sh"):
        done = subprocess.run(
            ["sh", str(script)], capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            unavailable(f"scripts/pcsc-up.sh failed: {done.stderr.strip() or done.stdout}")
    st = pcsc_status()
    if st.pcsc != "ok":
        unavailable(f"pcscd is not running ({st.detail}); run scripts/pcsc-up.sh as root")
    if VPCD_READER not in st.readers:
        unavailable(f"vpcd reader {VPCD_READER!r} not found (readers: {st.readers})")
    return VPCD_READER


@pytest.fixture
def make_sim(pcsc_reader: str, test_card: PkiCard, tmp_path: Path) -> Iterator[Callable[..., Sim]]:
    # One vpcd slot is shared by everything on this machine: serialise across processes
    # (pytest-xdist workers, a colleague's test run) with a file lock.
    lock = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "mynagate-vpcd.lock"), "w")  # noqa: SIM115
    fcntl.flock(lock, fcntl.LOCK_EX)
    sims: list[Sim] = []

    def factory(token: str = "plastic", tries_left: int = 3, state_file: Path | None = None) -> Sim:
        card = VirtualJpkiCard(
            test_card.cert_der,
            test_card.key,
            PIN,
            token=token,
            tries_left=tries_left,
            state_file=state_file,
        )
        client = VpcdCardClient(card, port=VPCD_PORT).start()
        sim = Sim(card, client, pcsc_reader)
        sims.append(sim)
        if not client.wait_connected(10):
            unavailable(f"the simulator could not connect to vpcd on 127.0.0.1:{VPCD_PORT}")
        if not wait_for(sim.card_present, 10):
            unavailable(f"pcscd did not report the simulated card in {pcsc_reader!r}")
        return sim

    try:
        yield factory
    finally:
        for s in sims:
            s.client.stop()
            wait_for(lambda s=s: not s.card_present(), 10)
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    p = FakeProvider()
    yield p
    p.httpd.shutdown()
    p.httpd.server_close()


