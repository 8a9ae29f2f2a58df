"""/metrics: who may read it, and that what happens is counted with bounded labels."""

from __future__ import annotations

import pytest

from tests.card.helpers import Card, CardBrowser, error_of
from tests.conftest import Browser, Student, redeem, token_request
from tests.ops.conftest import scrape, value

TOKEN = "metrics-token-0123456789abcdef-0123456789"


def test_metrics_from_loopback_by_default(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    text = response.get_data(as_text=True)
    assert "# TYPE mynagate_http_request_duration_seconds histogram" in text


@pytest.mark.parametrize("address", ["203.0.113.7", "10.1.2.3", "::ffff:198.51.100.1",
                                     "2001:db8::1"])
def test_metrics_refused_from_an_address_not_listed(app, address):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    response = client.get("/metrics")
    assert response.status_code == 404
    assert "mynagate_" not in response.get_data(as_text=True)


def test_a_forwarded_for_header_does_not_open_metrics_without_a_proxy(app):
    """Without IDP_TRUSTED_PROXY_HOPS the peer address counts, not what a client claims."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    response = client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert response.status_code == 404


def test_metrics_allow_list_and_bearer_token(app, svc, monkeypatch):
    monkeypatch.setattr(svc.settings, "metrics_allow", ["10.0.0.0/8"])
    monkeypatch.setattr(svc.settings, "metrics_token", TOKEN)
    inside, outside = app.test_client(), app.test_client()
    inside.environ_base["REMOTE_ADDR"] = "10.9.8.7"
    outside.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    assert inside.get("/metrics").status_code == 200
    assert outside.get("/metrics").status_code == 404
    assert outside.get("/metrics", headers={"Authorization": "Bearer " + TOKEN}
                       ).status_code == 200
    for wrong in ("Bearer " + TOKEN[:-1], "Bearer", "Basic " + TOKEN, TOKEN, "Bearer  "):
        assert outside.get("/metrics", headers={"Authorization": wrong}).status_code == 404


def test_metrics_settings_are_validated():
    from idp.settings import Settings, SettingsError

    base = {"env": "test"}
    with pytest.raises(SettingsError, match="IDP_METRICS_ALLOW"):
        Settings.load({**base, "metrics_allow": ["not-a-network"]}, environ={})
    with pytest.raises(SettingsError, match="IDP_METRICS_TOKEN"):
        Settings.load({**base, "metrics_token": "short"}, environ={})
    settings = Settings.load(base, environ={"IDP_METRICS_ALLOW": "10.0.0.0/8, 192.168.0.0/16"})
    assert settings.metrics_allow == ["10.0.0.0/8", "192.168.0.0/16"]


def test_sign_ins_tokens_and_latency_are_counted(app, client, browser, rp, student):
    before = scrape(client)
    query, verifier = browser.sign_in_and_authorize(rp, student, scope="openid offline_access")
    tokens = redeem(client, rp, query["code"], verifier).get_json()
    refreshed = token_request(client, rp, {"grant_type": "refresh_token",
                                           "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.get_json()
    wrong = Browser(app.test_client())
    wrong.c.environ_base["REMOTE_ADDR"] = "10.77.0.1"
    wrong.password_login(wrong.c.get("/login"), Student(
        student.id, student.school_code, student.login_id, "wrong password"))
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("mynagate_sign_ins_total", method="password", result="success",
                 reason="") == 1
    assert delta("mynagate_sign_ins_total", method="password", result="failure",
                 reason="bad_credentials") == 1
    for kind in ("access", "id", "refresh"):
        assert delta("mynagate_tokens_issued_total", grant_type="authorization_code",
                     kind=kind) == 1
        assert delta("mynagate_tokens_issued_total", grant_type="refresh_token",
                     kind=kind) == 1
    assert delta("mynagate_http_request_duration_seconds_count", endpoint="oidc.token",
                 method="POST") == 2
    assert delta("mynagate_http_request_duration_seconds_count", endpoint="oidc.authorize",
                 method="GET") >= 1


def test_latency_is_labelled_by_endpoint_not_path(client):
    before = scrape(client)
    for n in range(5):
        client.get(f"/no-such-page-{n}")
    client.get("/login/card/pair/ABCDEFGH/status")
    after = scrape(client)
    names = {labels for (name, labels) in after
             if name == "mynagate_http_request_duration_seconds_count"}
    endpoints = {dict(labels)["endpoint"] for labels in names}
    assert not any("no-such-page" in e or "ABCDEFGH" in e for e in endpoints)
    unmatched = ("mynagate_http_request_duration_seconds_count",
                 frozenset({("endpoint", "unmatched"), ("method", "GET")}))
    assert after[unmatched] - before.get(unmatched, 0) >= 5


def test_server_errors_are_counted_by_endpoint(client, svc, monkeypatch):
    from idp.store.shortlived import StoreUnavailable

    def down(*_args, **_kwargs):
        raise StoreUnavailable("down")

    before = scrape(client)
    client.set_cookie("mynagate_session", "s" * 43)  # reading it finds the store down
    monkeypatch.setattr(svc.store, "get", down)
    assert client.get("/login").status_code == 503
    monkeypatch.undo()
    after = scrape(client)
    key = ("mynagate_http_server_errors_total",
           frozenset({("endpoint", "auth.login"), ("status", "503")}))
    assert after[key] - before.get(key, 0) == 1


def test_throttle_hits_are_counted(app, svc, student):
    from idp.signin.throttle import Throttle

    throttle = Throttle(svc.store, secret="s" * 32)
    before = scrape(app.test_client())
    key = f"{student.school_code}:{student.login_id}:throttle-test"
    for _ in range(8):
        attempt = throttle.begin(key, "10.66.0.1", account_id=student.id)
        if attempt.allowed:
            attempt.failed()
    after = scrape(app.test_client())
    name = ("mynagate_throttle_hits_total", frozenset({("kind", "account")}))
    assert after[name] - before.get(name, 0) >= 1


def test_card_sign_ins_and_revocation_outcomes_are_counted(crl_app, test_pki):
    from idp.jpki.testing.testpki import issue_user_cert

    client = crl_app.test_client()
    before = scrape(client)
    issued = issue_user_cert(test_pki.root)
    card = Card(issued.certificate, issued.private_key)
    browser = CardBrowser(crl_app.test_client())
    response = browser.use_card(card)
    assert error_of(response) == "card_not_linked"
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("mynagate_card_revocation_checks_total", source="crl", outcome="good") == 1
    assert delta("mynagate_sign_ins_total", method="card", result="failure",
                 reason="card_not_linked") == 1


def test_crl_age_is_reported_per_issuer_at_scrape_time(crl_app):
    samples = scrape(crl_app.test_client())
    ages = {labels: v for (name, labels), v in samples.items()
            if name == "mynagate_crl_age_seconds"}
    left = {labels: v for (name, labels), v in samples.items()
            if name == "mynagate_crl_next_update_seconds"}
    assert len(ages) == 1 and len(left) == 1
    (issuer,) = {dict(labels)["issuer"] for labels in ages}
    assert len(issuer) == 16 and all(c in "0123456789abcdef" for c in issuer)
    assert 0 <= next(iter(ages.values())) < 24 * 3600
    assert next(iter(left.values())) > 0


def test_the_default_app_reports_no_crl_gauges(client):
    samples = scrape(client)
    assert not [name for name, _ in samples if name.startswith("mynagate_crl_")]


def test_each_revocation_source_reports_its_answer():
    """The observer the provider gives the verifier hears every source of ocsp,crl."""
    from idp.jpki.errors import CardError
    from idp.jpki.revocation import OcspThenCrl, checked

    class Source:
        def __init__(self, source, answer):
            self.source, self.answer = source, answer

        def check(self, validated, now):
            if isinstance(self.answer, Exception):
                raise self.answer

    heard = []
    combined = OcspThenCrl(Source("ocsp", CardError("revocation_unavailable", "down")),
                           Source("crl", None))
    combined.observe = lambda source, outcome: heard.append((source, outcome))
    checked(combined, None, None, combined.observe)
    assert heard == [("ocsp", "unknown"), ("crl", "good")]
    heard.clear()
    combined.ocsp = Source("ocsp", CardError("certificate_revoked", "revoked"))
    with pytest.raises(CardError):
        checked(combined, None, None, None)
    assert heard == [("ocsp", "revoked")]
    heard.clear()
    with pytest.raises(ZeroDivisionError):
        checked(Source("crl", ZeroDivisionError()), None, None, combined.observe)
    assert heard == [("crl", "error")]


def test_label_values_stay_in_their_vocabulary():
    from idp.metrics import REGISTRY, count_sign_in, count_throttle_hit

    count_sign_in("made-up method", "a reason\nwith a newline")
    count_throttle_hit("x" * 500)
    text = "\n".join(str(sample) for metric in REGISTRY.collect() for sample in metric.samples)
    assert "made-up" not in text and "newline" not in text and "x" * 50 not in text
