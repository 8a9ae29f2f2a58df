"""Relying parties through the admin API and pages: create, edit, disable, rotate, delete."""

from __future__ import annotations

import base64

from tests.admin.conftest import admin_sign_in, form_token
from tests.conftest import RP, redeem

META = {"client_name": "えいごアプリ", "redirect_uris": ["https://eigo.example.test/cb"],
        "post_logout_redirect_uris": ["https://eigo.example.test/bye"],
        "scope": "openid profile", "logo_uri": "https://eigo.example.test/logo.png",
        "contacts": ["it@eigo.example.test"], "access_token_lifetime": 300,
        "required_acr": "urn:mynagate:acr:password"}


def _rp(body) -> RP:
    return RP(body["client_id"], body.get("client_secret"), body["redirect_uris"][0],
              body["sector"], body["token_endpoint_auth_method"])


def test_create_shows_secret_once_and_stores_metadata(client, platform_admin, token_of, svc):
    from idp.store.models import Client

    headers = token_of(platform_admin)
    created = client.post("/api/admin/clients", json=META, headers=headers)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["client_secret"] and body["sector"] == "eigo.example.test"
    assert body["scope"] == "openid profile" and body["access_token_lifetime"] == 300
    fetched = client.get(f"/api/admin/clients/{body['client_id']}", headers=headers).get_json()
    assert "client_secret" not in fetched
    with svc.db.session() as s:
        row = s.get(Client, body["client_id"])
        assert row.client_secret_hash and body["client_secret"] not in row.client_secret_hash


def test_bad_metadata_is_a_clear_400(client, platform_admin, token_of):
    headers = token_of(platform_admin)
    for meta, code in (({**META, "redirect_uris": ["http://evil.example/cb"]},
                        "invalid_redirect_uri"),
                       ({**META, "scope": "openid admin"}, "invalid_client_metadata"),
                       ({**META, "access_token_lifetime": 5}, "invalid_client_metadata"),
                       ({**META, "redirect_uris": "https://x.example/cb"},
                        "invalid_client_metadata"),
                       ({k: v for k, v in META.items() if k != "client_name"},
                        "invalid_client_metadata")):
        response = client.post("/api/admin/clients", json=meta, headers=headers)
        assert response.status_code == 400 and response.get_json()["error"] == code, meta
    assert client.post("/api/admin/clients", data="[1]", headers=headers,
                       content_type="application/json").status_code == 400


def test_edit_keeps_sector_and_refuses_a_sector_change(client, platform_admin, token_of):
    headers = token_of(platform_admin)
    body = client.post("/api/admin/clients", json=META, headers=headers).get_json()
    url = f"/api/admin/clients/{body['client_id']}"
    edited = client.put(url, json={**META, "client_name": "英語アプリ2",
                                   "redirect_uris": ["https://eigo.example.test/cb2"]},
                        headers=headers)
    assert edited.status_code == 200 and edited.get_json()["client_name"] == "英語アプリ2"
    moved = client.put(url, json={**META, "redirect_uris": ["https://other.example.test/cb"]},
                       headers=headers)
    assert moved.status_code == 400 and "sector" in moved.get_json()["error_description"]


def test_disabling_a_client_kills_its_tokens_at_once(client, browser, make_rp, student,
                                                     platform_admin, token_of):
    rp = make_rp(host="disable.example.test")
    query, verifier = browser.sign_in_and_authorize(rp, student)
    tokens = redeem(client, rp, query["code"], verifier).get_json()
    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    assert client.get("/userinfo", headers=bearer).status_code == 200
    headers = token_of(platform_admin)
    assert client.post(f"/api/admin/clients/{rp.client_id}/disable",
                       headers=headers).status_code == 200
    dead = client.get("/userinfo", headers=bearer)
    assert dead.status_code == 401 and dead.get_json()["error"] == "invalid_token"
    basic = base64.b64encode(f"{rp.client_id}:{rp.client_secret}".encode()).decode()
    introspected = client.post("/introspect", data={"token": tokens["access_token"]},
                               headers={"Authorization": "Basic " + basic})
    assert introspected.status_code == 401 or introspected.get_json().get("active") is False
    assert client.post(f"/api/admin/clients/{rp.client_id}/enable",
                       headers=headers).status_code == 200
    assert client.get("/userinfo", headers=bearer).status_code == 200


def test_rotating_the_secret_retires_the_old_one(client, browser, make_rp, student,
                                                 platform_admin, token_of):
    rp = make_rp(host="rotate.example.test")
    rotated = client.post(f"/api/admin/clients/{rp.client_id}/rotate-secret",
                          headers=token_of(platform_admin))
    new_secret = rotated.get_json()["client_secret"]
    assert new_secret != rp.client_secret
    query, verifier = browser.sign_in_and_authorize(rp, student)
    assert redeem(client, rp, query["code"], verifier).status_code == 401
    rp.client_secret = new_secret
    query, verifier = browser.sign_in_and_authorize(rp, student)
    assert redeem(client, rp, query["code"], verifier).status_code == 200


def test_delete_removes_consents_but_keeps_disclosure_history(client, browser, make_rp,
                                                             student, platform_admin,
                                                             token_of, svc):
    from idp.store.models import Client, Consent, Disclosure

    rp = make_rp(host="delete.example.test")
    query, verifier = browser.sign_in_and_authorize(rp, student, scope="openid profile")
    redeem(client, rp, query["code"], verifier)
    assert client.delete(f"/api/admin/clients/{rp.client_id}",
                         headers=token_of(platform_admin)).status_code == 204
    svc.events.flush()
    with svc.db.session() as s:
        assert s.get(Client, rp.client_id) is None
        assert s.query(Consent).filter_by(client_id=rp.client_id).count() == 0
        assert s.query(Disclosure).filter_by(client_id=rp.client_id).count() >= 1
    assert client.get(f"/api/admin/clients/{rp.client_id}",
                      headers=token_of(platform_admin)).status_code == 404


def test_web_pages_register_edit_disable_and_show_secret_once(app, platform_admin):
    c = app.test_client()
    admin_sign_in(c, platform_admin)
    response = c.post("/admin/clients/new", data={
        "csrf_token": form_token(c, "/admin/clients/new"), "client_name": "ウェブ登録アプリ",
        "redirect_uris": "https://web.example.test/cb\nhttps://web.example.test/cb2",
        "token_endpoint_auth_method": "client_secret_basic", "scopes": ["openid", "profile"],
        "id_token_signed_response_alg": "RS256", "required_acr": ""})
    assert response.status_code == 303, response.get_data(as_text=True)[:800]
    handoff = response.headers["Location"]
    assert handoff.endswith("/handoff")  # issue 12: the vendor's hand-off page
    first = c.get(handoff).get_data(as_text=True)
    assert 'id="handoff-secret"' in first
    assert 'id="handoff-secret"' not in c.get(handoff).get_data(as_text=True)
    client_id = handoff.rsplit("/", 2)[1]
    detail = f"/admin/clients/{client_id}"
    c.post(f"/admin/clients/{client_id}/disable", data={"csrf_token": form_token(c, detail)})
    assert "停止中" in c.get(detail).get_data(as_text=True)
    bad = c.post("/admin/clients/new", data={
        "csrf_token": form_token(c, "/admin/clients/new"), "client_name": "x",
        "redirect_uris": "http://not-loopback.example/cb",
        "token_endpoint_auth_method": "client_secret_basic", "scopes": ["openid"],
        "id_token_signed_response_alg": "RS256", "required_acr": ""})
    assert bad.status_code == 400 and 'id="error"' in bad.get_data(as_text=True)
