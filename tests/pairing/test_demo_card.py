"""``make run``'s demo card: a test PKI minted once, trusted (with its CRL) in development."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from idp.demo import setup_demo_card
from idp.demo.seed import demo_settings
from idp.jpki.testing.pki_dir import load_test_pki
from tests.conftest import close_app


def test_demo_card_pki_is_minted_once_and_trusted_with_its_crl(tmp_path, capsys):
    from idp.demo import describe_demo_card

    settings = demo_settings(tmp_path, environ={})
    info = setup_demo_card(settings)
    pki_dir = tmp_path / "demo-pki"
    assert info["pki_dir"] == str(pki_dir) and info["pin"] == "1234"
    assert settings.jpki_trust_anchors == [str(pki_dir / "root.pem")]
    assert settings.jpki_revocation == "crl"
    assert settings.jpki_crl_sources == [str(pki_dir / "crl.der")]
    assert capsys.readouterr().out == ""  # the demo's one banner says it, last
    printed = describe_demo_card(info)
    assert "sudo make bridge" in printed
    assert "sudo make bridge" not in describe_demo_card(info, first_run=False)
    assert f"card-bridge simulate --cert {pki_dir / 'card-1-cert.der'}" in printed
    assert "--pin 1234" in printed
    assert f"card-bridge serve --allow-origin {settings.issuer_origin}" in printed

    root = load_test_pki(pki_dir).manifest["root"]["sha256"]
    again = demo_settings(tmp_path, environ={})
    setup_demo_card(again)
    assert load_test_pki(pki_dir).manifest["root"]["sha256"] == root  # not minted again


def test_an_old_demo_crl_is_signed_again(tmp_path):
    setup_demo_card(demo_settings(tmp_path, environ={}))
    manifest_path = tmp_path / "demo-pki" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["crl"]["next_update"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    manifest_path.write_text(json.dumps(manifest))
    setup_demo_card(demo_settings(tmp_path, environ={}))
    renewed = datetime.fromisoformat(load_test_pki(tmp_path / "demo-pki")
                                     .manifest["crl"]["next_update"])
    assert renewed - datetime.now(UTC) > timedelta(days=5)


def test_the_provider_starts_with_the_demo_card_switched_on(tmp_path):
    from idp.app import create_app
    from idp.store.migrate import upgrade_database

    settings = demo_settings(tmp_path, environ={})
    setup_demo_card(settings)
    upgrade_database(settings.database_url)
    app = create_app(settings)
    card = app.extensions["mynagate"].card
    try:
        assert card.enabled and card.revocation_mode == "crl" and not card.revocation_disabled
        page = app.test_client().get("/login/card").get_data(as_text=True)
        assert 'id="card-start"' in page and 'id="card-off"' not in page
    finally:
        close_app(app)


def test_nothing_changes_outside_development_or_with_own_anchors(tmp_path):
    own = demo_settings(tmp_path, environ={"IDP_JPKI_TRUST_ANCHORS": "/etc/mine.pem"})
    assert setup_demo_card(own) is None and own.jpki_trust_anchors == ["/etc/mine.pem"]
    test_env = demo_settings(tmp_path, overrides={"env": "test"}, environ={})
    assert setup_demo_card(test_env) is None and test_env.jpki_trust_anchors == []
    assert not (tmp_path / "demo-pki").exists()
