"""A test PKI on disk: write one to a directory, load it back, revoke cards in its CRL.

The directory (root.pem, card-N-*.pem/.der, crl.der, ocsp-*.pem, manifest.json) is what the
demo, ``idp card`` commands, the virtual card of the bridge tests and the OCSP responder's
command line share.  Private keys are written unencrypted: test only.

``python -m idp.jpki.testing.pki_dir write DIR [--cards N]`` writes a fresh PKI;
``python -m idp.jpki.testing.pki_dir crl DIR --revoke SERIAL_HEX ...`` re-signs ``crl.der``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from idp.jpki.testing.testpki import (
    TestCA,
    TestCard,
    TestResponder,
    create_root,
    issue_ocsp_responder_cert,
    issue_user_cert,
    make_crl,
    pem_private_key,
)

MANIFEST_FORMAT = "mynagate-test-pki:1"


@dataclass
class TestPki:
    """A test PKI loaded from a directory written by :func:`write_test_pki`."""

    __test__ = False

    directory: Path
    root: TestCA
    cards: list[TestCard]
    responder: TestResponder
    revoked: set[int] = field(default_factory=set)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def root_path(self) -> Path:
        return self.directory / "root.pem"

    @property
    def crl_path(self) -> Path:
        return self.directory / "crl.der"


def write_test_pki(
    directory: str | Path,
    n_cards: int = 2,
    *,
    now: datetime | None = None,
    crl_days: int = 7,
) -> dict[str, Any]:
    """Write a fresh test PKI into ``directory`` and return its manifest.

    Files: root.pem, root-key.pem, card-N-cert.pem/.der, card-N-key.pem (N from 1),
    crl.der (empty, valid ``crl_days``), ocsp-cert.pem, ocsp-key.pem, manifest.json.
    Paths in the manifest are relative to ``directory``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = now or datetime.now(UTC)
    root = create_root(not_before=now - timedelta(days=1))
    (out / "root.pem").write_bytes(root.pem)
    (out / "root-key.pem").write_bytes(pem_private_key(root.private_key))
    cards = []
    for i in range(1, n_cards + 1):
        card = issue_user_cert(root, not_before=now - timedelta(days=1))
        (out / f"card-{i}-cert.pem").write_bytes(
            card.certificate.public_bytes(serialization.Encoding.PEM)
        )
        (out / f"card-{i}-cert.der").write_bytes(card.der)
        (out / f"card-{i}-key.pem").write_bytes(pem_private_key(card.private_key))
        cards.append(
            {
                "index": i,
                "cert_pem": f"card-{i}-cert.pem",
                "cert_der": f"card-{i}-cert.der",
                "key": f"card-{i}-key.pem",
                "serial": card.serial,
                "cn": card.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                "sha256": hashlib.sha256(card.der).hexdigest(),
                "not_after": card.certificate.not_valid_after_utc.isoformat(),
            }
        )
    crl = make_crl(root, [], now, now + timedelta(days=crl_days))
    (out / "crl.der").write_bytes(crl)
    responder = issue_ocsp_responder_cert(root, not_before=now - timedelta(days=1))
    (out / "ocsp-cert.pem").write_bytes(
        responder.certificate.public_bytes(serialization.Encoding.PEM)
    )
    (out / "ocsp-key.pem").write_bytes(pem_private_key(responder.private_key))
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "warning": "TEST PKI (O=JPKI-TEST) - never trust root.pem in production",
        "created": now.isoformat(),
        "root": {
            "cert": "root.pem",
            "key": "root-key.pem",
            "subject": root.certificate.subject.rfc4514_string(),
            "sha256": hashlib.sha256(
                root.certificate.public_bytes(serialization.Encoding.DER)
            ).hexdigest(),
        },
        "cards": cards,
        "crl": {
            "path": "crl.der",
            "revoked": [],
            "next_update": (now + timedelta(days=crl_days)).isoformat(),
        },
        "ocsp": {"cert": "ocsp-cert.pem", "key": "ocsp-key.pem"},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _load_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path}: not an RSA key")
    return key


def load_test_pki(directory: str | Path) -> TestPki:
    """Load a directory written by :func:`write_test_pki`."""
    d = Path(directory)
    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{d}: not a test PKI manifest")
    root = TestCA(
        x509.load_pem_x509_certificate((d / manifest["root"]["cert"]).read_bytes()),
        _load_key(d / manifest["root"]["key"]),
    )
    cards = [
        TestCard(
            x509.load_pem_x509_certificate((d / c["cert_pem"]).read_bytes()),
            _load_key(d / c["key"]),
        )
        for c in manifest["cards"]
    ]
    responder = TestResponder(
        x509.load_pem_x509_certificate((d / manifest["ocsp"]["cert"]).read_bytes()),
        _load_key(d / manifest["ocsp"]["key"]),
    )
    revoked = {int(s, 16) for s in manifest["crl"].get("revoked", [])}
    return TestPki(d, root, cards, responder, revoked, manifest)


def rewrite_crl(
    directory: str | Path, revoke: Iterable[int | str] = (), *, days: int = 7
) -> TestPki:
    """Add ``revoke`` to the revoked set and re-sign crl.der (a fresh CRL, valid ``days``).

    Serials are ints or hex strings (as in the manifest and ``TestCard.serial``).
    """
    pki = load_test_pki(directory)
    pki.revoked |= {s if isinstance(s, int) else int(s, 16) for s in revoke}
    now = datetime.now(UTC)
    number = int(pki.manifest["crl"].get("number", 1)) + 1
    pki.crl_path.write_bytes(
        make_crl(pki.root, sorted(pki.revoked), now, now + timedelta(days=days), crl_number=number)
    )
    pki.manifest["crl"].update(
        revoked=[format(s, "x") for s in sorted(pki.revoked)],
        next_update=(now + timedelta(days=days)).isoformat(),
        number=number,
    )
    (pki.directory / "manifest.json").write_text(
        json.dumps(pki.manifest, indent=2) + "\n", encoding="utf-8"
    )
    return pki


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m idp.jpki.testing.pki_dir", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write a fresh test PKI")
    w.add_argument("directory")
    w.add_argument("--cards", type=int, default=2)
    c = sub.add_parser("crl", help="revoke serials and re-sign crl.der")
    c.add_argument("directory")
    c.add_argument("--revoke", nargs="*", default=[], help="serials in hex")
    c.add_argument("--days", type=int, default=7)
    args = parser.parse_args(argv)
    if args.command == "write":
        manifest = write_test_pki(args.directory, args.cards)
        print(json.dumps(manifest, indent=2))
    else:
        pki = rewrite_crl(args.directory, args.revoke, days=args.days)
        print("revoked:", ", ".join(format(s, "x") for s in sorted(pki.revoked)) or "(none)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
