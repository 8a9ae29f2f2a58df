"""The independent relying party (npm openid-client, tests/rp_node) asks for the card level
and sees it: the provider over real HTTP, the card page driven like the page's script does
(challenge, card signature made here with ``cryptography``, verify), then consent."""

from __future__ import annotations

import html as htmllib
import re
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest

from idp.signin.context import ACR_CARD
from tests.card.helpers import make_token
from tests.card.test_card_flow import bind_directly
from tests.rp_node.live import HttpBrowser, start_live_provider
from tests.rp_node.test_openid_client import expected_sub, run_openid_client

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def live_card_provider(crl_app, settings_overrides, test_pki):
    # crl_app first: it migrated the shared test database.
    provider = start_live_provider({
        **settings_overrides, "jpki_trust_anchors": [str(test_pki.root_path)],
        "jpki_revocation": "crl", "jpki_crl_sources": [str(test_pki.crl_path)]})
    yield provider
    refresher = provider.services.card.refresher
    if refresher is not None:
        refresher.stop()
    provider.stop()


def _data(html: str, name: str) -> str:
    return htmllib.unescape(re.search(rf'data-{name}="([^"]*)"', html).group(1))


def card_drive(card, redirect_uri: str):
    browser = HttpBrowser()

    def drive(authorization_url: str) -> str:
        url, response = browser.go(authorization_url)
        # The app asks for the card level: the card page at once, no password form.
        assert urlsplit(url).path == "/login/card", (url, response.status_code)
        assert 'name="password"' not in response.text
        page = response
        headers = {"X-CSRFToken": _data(page.text, "csrf")}
        challenge = browser.http.post(urljoin(url, _data(page.text, "challenge-url")),
                                      headers=headers, timeout=30).json()
        token = make_token(card.der, card.key, challenge["challenge"], challenge["origin"])
        verified = browser.http.post(urljoin(url, _data(page.text, "verify-url")), json=token,
                                     headers=headers, timeout=30)
        assert verified.status_code == 200, verified.text
        final, response = browser.go(urljoin(url, verified.json()["redirect"]),
                                     stop_at=redirect_uri)
        assert final.startswith(redirect_uri), (final, response.text[:300])
        return final

    return drive


def test_openid_client_asks_for_the_card_level_and_sees_acr_and_amr(
        live_card_provider, make_rp, make_student, new_card):
    rp = make_rp(host="rp-node-card.example.test", auth_method="client_secret_post")
    student, card = make_student(), new_card()
    bind_directly(live_card_provider.services, student, card)
    result = run_openid_client(live_card_provider.issuer, rp, card_drive(card, rp.redirect_uri),
                               acr_values=ACR_CARD)
    assert "summary" in result, result
    claims = result["summary"]["id_token_claims"]
    assert claims["acr"] == ACR_CARD
    assert claims["amr"] == ["sc", "pin", "hwk"]
    assert claims["sub"] == expected_sub(live_card_provider.services, rp, student.id)
    assert parse_qs(urlsplit(result["authorization_url"]).query)["acr_values"] == [ACR_CARD]
