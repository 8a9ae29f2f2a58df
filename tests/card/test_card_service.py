"""Building the card service from the settings; the CRL refresh; the switched-off states."""

from __future__ import annotations

import pytest

from idp.auth.card import (
    CrlRefresher,
    build_card_service,
    issue_challenge,
    request_crl_refresh,
    take_challenge,
)
from idp.jpki.errors import CardError
from idp.jpki.revocation import CrlRevocation, NoRevocation, OcspRevocation, OcspThenCrl
from idp.settings import Settings
from idp.store.shortlived import MemoryStore


def settings(**overrides) -> Settings:
    base = {"env": "test", "jpki_trust_anchors": [], "jpki_revocation": "none"}
    return Settings.load({**base, **overrides}, environ={})


def test_revocation_none_builds_with_a_visible_warning(test_pki):
    service = build_card_service(settings(jpki_trust_anchors=[str(test_pki.root_path)]))
    assert isinstance(service.verifier.revocation, NoRevocation)
    assert service.revocation_disabled
    assert any("NOT refused" in warning for warning in service.warnings)


def test_revocation_none_page_shows_the_warning(settings_overrides, test_pki):
    from tests.conftest import provider_app

    with provider_app({**settings_overrides, "jpki_trust_anchors": [str(test_pki.root_path)],
                       "jpki_revocation": "none"}) as application:
        html = application.test_client().get("/login/card").get_data(as_text=True)
    assert 'id="card-revocation-warning"' in html


def test_crl_mode_page_has_no_warning(card_browser):
    assert "card-revocation-warning" not in card_browser.card_page().get_data(as_text=True)


def test_ocsp_then_crl_mode_builds_both(test_pki):
    service = build_card_service(settings(
        jpki_trust_anchors=[str(test_pki.root_path)], jpki_revocation="ocsp,crl",
        jpki_crl_sources=[str(test_pki.crl_path)], jpki_ocsp_url="http://127.0.0.1:9/"))
    checker = service.verifier.revocation
    assert isinstance(checker, OcspThenCrl)
    assert isinstance(checker.ocsp, OcspRevocation) and isinstance(checker.crl, CrlRevocation)
    assert service.refresher is not None and service.refresher.checkers == [checker.crl]


def test_production_refuses_to_start_without_trust_anchors():
    production = settings()
    production.env = "production"
    with pytest.raises(ValueError, match="IDP_JPKI_TRUST_ANCHORS"):
        build_card_service(production)


def test_unreadable_trust_anchor_stops_the_start(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        build_card_service(settings(jpki_trust_anchors=[str(tmp_path / "missing.pem")]))


def test_shipped_anchor_paths_resolve_from_any_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    service = build_card_service(settings(
        jpki_trust_anchors=["config/jpki/auth_ca_2015.pem", "config/jpki/auth_ca_2023.pem"]))
    assert len(service.verifier.anchors) == 2


def test_without_anchors_card_sign_in_is_off_and_says_so(client):
    # The shared test app has no trust anchors configured.
    html = client.get("/login/card").get_data(as_text=True)
    assert 'id="card-off"' in html and "card.js" not in html
    csrf = client.get("/login").get_data(as_text=True)
    import re

    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', csrf).group(1)
    response = client.post("/login/card/challenge", headers={"X-CSRFToken": token})
    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"


def test_challenges_are_bound_to_browser_and_transaction(test_pki):
    service = build_card_service(settings(jpki_trust_anchors=[str(test_pki.root_path)]))
    store = MemoryStore()
    answer = issue_challenge(store, service, browser="b1", txn_id="t1")
    assert len(answer["challenge"]) == 43 and answer["expires_in"] == 300
    for browser, txn in (("b2", "t1"), ("b1", "t2"), ("b1", None)):
        with pytest.raises(CardError) as refused:
            take_challenge(store, browser=browser, txn_id=txn)
        assert refused.value.code == "challenge_not_found"
    assert take_challenge(store, browser="b1", txn_id="t1") == answer["challenge"]
    with pytest.raises(CardError):
        take_challenge(store, browser="b1", txn_id="t1")


def test_refresher_thread_starts_once_per_process_and_stops(test_pki):
    checker = CrlRevocation([str(test_pki.crl_path)], anchors=_anchors(test_pki))
    refresher = CrlRefresher([checker], interval=3600)
    refresher.ensure_running()
    thread = refresher._thread
    refresher.ensure_running()
    assert refresher._thread is thread and thread.daemon and thread.is_alive()
    refresher.stop()
    assert not thread.is_alive()


def test_refresher_notices_a_refresh_request_from_another_process(test_pki):
    store = MemoryStore()
    checker = CrlRevocation([str(test_pki.crl_path)], anchors=_anchors(test_pki))
    refresher = CrlRefresher([checker], interval=3600, store=store)
    assert not refresher._requested_since_last_refresh()
    request_crl_refresh(store, 3600)
    refresher.last_refresh -= 1  # the request came after the last refresh
    assert refresher._requested_since_last_refresh()
    statuses = refresher.refresh()
    assert [status.ok for status in statuses] == [True]
    assert not refresher._requested_since_last_refresh()


def _anchors(test_pki):
    from idp.jpki import TrustAnchors

    return TrustAnchors.from_pem_files([test_pki.root_path])


def test_development_without_revocation_sources_starts_with_card_sign_in_off(test_pki):
    service = build_card_service(settings(jpki_trust_anchors=[str(test_pki.root_path)],
                                          jpki_revocation="ocsp,crl"))
    assert not service.enabled
    assert any("IDP_JPKI_CRL_SOURCES" in warning for warning in service.warnings)
