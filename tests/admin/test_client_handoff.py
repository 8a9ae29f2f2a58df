"""Registering an app (issue 12): help for each field, sensible defaults, and the vendor's
hand-off page, where the secret is shown once and never again."""

from __future__ import annotations

import re

from tests.admin.conftest import admin_sign_in, form_token
from tests.conftest import csrf_of

FORM = {"client_name": "かんたん漢字ドリル",
        "redirect_uris": "https://drill.example.test/cb\nhttps://drill.example.test/cb2",
        "token_endpoint_auth_method": "client_secret_basic",
        "scopes": ["openid", "profile", "school"], "id_token_signed_response_alg": "RS256",
        "required_acr": ""}


def _register(c, **changes):
    return c.post("/admin/clients/new", data={
        "csrf_token": form_token(c, "/admin/clients/new"), **FORM, **changes})


def test_new_app_form_has_help_and_defaults(app, platform_admin):
    c = app.test_client()
    admin_sign_in(c, platform_admin)
    html = c.get("/admin/clients/new").get_data(as_text=True)
    for scope in ("openid", "profile", "school"):
        assert re.search(rf'<option selected value="{scope}">|<option value="{scope}" selected',
                         html), scope
    assert not re.search(r'<option selected value="offline_access">', html)
    assert re.search(r'<option selected value="client_secret_basic">', html)
    # Every field of the form says what it is for, tied to its input for screen readers.
    for name in ("client_name", "redirect_uris", "scopes", "token_endpoint_auth_method"):
        assert f'id="{name}-help"' in html and f'aria-describedby="{name}-help"' in html


def test_hand_off_page_shows_everything_and_the_secret_only_once(app, svc, platform_admin):
    from idp.store.models import Client

    c = app.test_client()
    admin_sign_in(c, platform_admin)
    saved = _register(c)
    assert saved.status_code == 303, saved.get_data(as_text=True)[:500]
    handoff = saved.headers["Location"]
    client_id = handoff.rsplit("/", 2)[1]
    first = c.get(handoff)
    html = first.get_data(as_text=True)
    assert first.headers["Cache-Control"] == "no-store"
    issuer = svc.settings.issuer.rstrip("/")
    assert f'id="handoff-issuer">{issuer}<' in html
    assert f"{issuer}/.well-known/openid-configuration" in html
    assert f'id="handoff-client-id">{client_id}<' in html
    assert "https://drill.example.test/cb2" in html
    assert 'id="handoff-scopes">openid profile school<' in html
    secret = re.search(r'id="handoff-secret" class="secret">([^<]+)<', html).group(1)
    assert 'data-copy="handoff-secret"' in html and "/static/copy.js" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # CSP: the copy script is a file
    with svc.db.session() as s:
        assert secret not in (s.get(Client, client_id).client_secret_hash or "")
    again = c.get(handoff).get_data(as_text=True)
    assert secret not in again and 'id="handoff-secret-gone"' in again
    assert secret not in c.get(f"/admin/clients/{client_id}").get_data(as_text=True)


def test_secret_works_at_the_token_endpoint(app, client, platform_admin):
    import base64

    c = app.test_client()
    admin_sign_in(c, platform_admin)
    handoff = _register(c, token_endpoint_auth_method="client_secret_basic").headers["Location"]
    html = c.get(handoff).get_data(as_text=True)
    client_id = handoff.rsplit("/", 2)[1]
    secret = re.search(r'id="handoff-secret" class="secret">([^<]+)<', html).group(1)
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    answer = client.post("/token", data={"grant_type": "authorization_code", "code": "nope",
                                         "redirect_uri": "https://drill.example.test/cb"},
                         headers={"Authorization": f"Basic {basic}"})
    assert answer.get_json()["error"] == "invalid_grant"  # authenticated; the code is bad
    wrong = base64.b64encode(f"{client_id}:x{secret}".encode()).decode()
    answer = client.post("/token", data={"grant_type": "authorization_code", "code": "nope",
                                         "redirect_uri": "https://drill.example.test/cb"},
                         headers={"Authorization": f"Basic {wrong}"})
    assert answer.get_json()["error"] == "invalid_client"


def test_rotating_goes_to_the_hand_off_page_with_the_new_secret(app, platform_admin):
    c = app.test_client()
    admin_sign_in(c, platform_admin)
    handoff = _register(c).headers["Location"]
    old = re.search(r'id="handoff-secret" class="secret">([^<]+)<',
                    c.get(handoff).get_data(as_text=True)).group(1)
    page = c.get(handoff).get_data(as_text=True)
    rotate = re.search(r'action="([^"]+/rotate)"', page).group(1)
    rotated = c.post(rotate, data={"csrf_token": csrf_of(page)})
    assert rotated.status_code == 303 and rotated.headers["Location"] == handoff
    new = re.search(r'id="handoff-secret" class="secret">([^<]+)<',
                    c.get(handoff).get_data(as_text=True)).group(1)
    assert new != old


def test_a_secret_is_shown_on_its_own_apps_page_only(app, platform_admin):
    c = app.test_client()
    admin_sign_in(c, platform_admin)
    first = _register(c).headers["Location"]
    c.get(first)  # its secret, seen and gone
    second = _register(c, client_name="べつのアプリ").headers["Location"]
    html = c.get(first).get_data(as_text=True)  # the other app's page: not the new secret
    assert 'id="handoff-secret"' not in html
    # ... and that looking spent it: the second app's page no longer shows it either.
    assert 'id="handoff-secret"' not in c.get(second).get_data(as_text=True)


def test_csrf_and_permissions(app, svc, platform_admin, school_admin):
    from sqlalchemy import func, select

    from idp.store.models import Client

    c = app.test_client()
    admin_sign_in(c, platform_admin)
    with svc.db.session() as s:
        before = s.scalar(select(func.count()).select_from(Client))
    refused = c.post("/admin/clients/new", data=FORM)  # no CSRF token
    assert refused.status_code == 400
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Client)) == before
    handoff = _register(c).headers["Location"]
    school = app.test_client()
    admin_sign_in(school, school_admin)
    assert school.get(handoff).status_code == 403
    assert school.get("/admin/clients/no-such-app/handoff").status_code == 403
    assert c.get("/admin/clients/no-such-app/handoff").status_code == 404
    assert c.get("/admin/clients/" + "x" * 200 + "/handoff").status_code == 404
