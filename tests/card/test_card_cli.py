"""``idp card list|revoke`` and ``idp jpki test-pki|refresh-crl``."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from idp.accounts.cards import CardIdentity, bind_card, bindings_of
from idp.cli import Ctx, cli, register_extra_commands
from idp.store.models import Account, AuditEvent, utcnow
from tests.card.helpers import error_of
from tests.card.test_card_flow import bind_directly

register_extra_commands()


@pytest.fixture
def run(crl_app):
    def invoke(*args: str):
        ctx = Ctx()
        ctx._app = crl_app  # the test provider instead of one built from the environment
        return CliRunner().invoke(cli, list(args), obj=ctx)

    return invoke


def test_card_list_shows_active_expired_revoked_and_replaced_bindings(run, crl_svc, new_card,
                                                                     student):
    old, live, lost = new_card(), new_card(), new_card()
    bind_directly(crl_svc, student, lost)
    with crl_svc.db.session() as db:
        lost_id = next(b.id for b in bindings_of(db, student.id)
                       if b.serial == format(lost.serial, "x"))
    assert run("card", "revoke", lost_id, "--reason", "lost").exit_code == 0
    for card in (old, live):  # a renewal: live takes old's place
        bind_directly(crl_svc, student, card)
    with crl_svc.db.session() as db:
        account = db.get(Account, student.id)
        expired = bind_card(db, account, CardIdentity(
            "C=JP,O=JPKI-TEST", "abc123", "0" * 63 + "1", utcnow() - timedelta(days=1)),
            ip="test")
        expired_id = expired.id
        by_serial = {b.serial: b.id for b in bindings_of(db, student.id)}
    old_id, live_id = by_serial[format(old.serial, "x")], by_serial[format(live.serial, "x")]

    result = run("card", "list", "--account", student.id, "--json")
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.output)}
    assert len(rows) == 4
    assert rows[expired_id]["status"] == "expired" and not rows[expired_id]["active"]
    assert rows[lost_id]["status"] == "revoked" and not rows[lost_id]["active"]
    assert rows[old_id]["status"] == "replaced" and not rows[old_id]["active"]
    assert rows[old_id]["replaced_by"] == live_id and rows[old_id]["replaced_at"]
    assert [row["id"] for row in rows.values() if row["active"]] == [live_id]

    text = run("card", "list", "--school", student.school_code, "--login", student.login_id)
    assert text.exit_code == 0
    assert text.output.count("inactive (expired)") == 1
    assert text.output.count("inactive (revoked)") == 1
    assert text.output.count(f"inactive (replaced) by {live_id} at ") == 1
    assert text.output.count("\tactive\t") == 1


def test_card_revoke_refuses_sign_in_and_is_audited(run, card_browser, crl_svc, new_card,
                                                    student):
    card = new_card()
    bind_directly(crl_svc, student, card)
    assert card_browser.use_card(card).status_code == 200
    with crl_svc.db.session() as db:
        [binding] = bindings_of(db, student.id)
    result = run("card", "revoke", binding.id)
    assert result.exit_code == 0 and "revoked" in result.output
    assert error_of(card_browser.use_card(card)) == "certificate_revoked"
    with crl_svc.db.session() as db:
        event = db.scalar(select(AuditEvent).where(AuditEvent.event == "card.revoked",
                                                   AuditEvent.account_id == student.id))
        assert event.actor == "cli" and event.details["binding_id"] == binding.id


def test_card_commands_reject_bad_arguments(run):
    assert run("card", "list").exit_code == 2
    assert run("card", "list", "--account", "x", "--school", "y").exit_code == 2
    assert run("card", "list", "--account", "no-such-account").exit_code == 2
    result = run("card", "revoke", "no-such-binding")
    assert result.exit_code == 2 and "no card binding" in result.output


def test_jpki_test_pki_writes_a_hierarchy_the_verifier_accepts(run, tmp_path):
    from datetime import UTC, datetime

    from cryptography import x509

    from idp.jpki import TrustAnchors, validate_path

    result = run("jpki", "test-pki", str(tmp_path / "pki"), "--cards", "1")
    assert result.exit_code == 0, result.output
    assert "JPKI-TEST" in result.output
    anchors = TrustAnchors.from_pem_files([tmp_path / "pki" / "root.pem"])
    der = (tmp_path / "pki" / "card-1-cert.der").read_bytes()
    validated = validate_path(der, anchors, datetime.now(UTC))
    assert validated.serial == json.loads((tmp_path / "pki" / "manifest.json").read_text())[
        "cards"][0]["serial"]
    crl = x509.load_der_x509_crl((tmp_path / "pki" / "crl.der").read_bytes())
    assert crl.is_signature_valid(anchors.certificates[0].public_key())


def test_jpki_refresh_crl_picks_up_a_new_revocation(run, card_browser, crl_svc, test_pki,
                                                    new_card, student):
    from idp.auth.card import REFRESH_REQUEST_KEY
    from idp.jpki.testing.pki_dir import rewrite_crl

    card = new_card()
    bind_directly(crl_svc, student, card)
    rewrite_crl(test_pki.directory, [card.serial])
    assert card_browser.use_card(card).status_code == 200  # not reloaded yet
    result = run("jpki", "refresh-crl")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok\t") and str(test_pki.crl_path) in result.output
    assert error_of(card_browser.use_card(card)) == "certificate_revoked"
    # Running servers sharing the store are asked to reload too.
    assert crl_svc.store.get(REFRESH_REQUEST_KEY)["at"] > 0


def test_jpki_refresh_crl_without_crl_mode_says_so(ocsp_app):
    ctx = Ctx()
    ctx._app = ocsp_app
    result = CliRunner().invoke(cli, ["jpki", "refresh-crl"], obj=ctx)
    assert result.exit_code == 2 and "uses no CRL" in result.output
