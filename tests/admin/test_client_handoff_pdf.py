"""The vendor's hand-off sheet as a PDF (issue 12): the page's facts, the embedded Japanese
font of the first-password slips, and the secret printed once, in the first PDF after the
page showed it."""

from __future__ import annotations

import re

from tests.admin import pdf_layout
from tests.admin.conftest import admin_sign_in
from tests.admin.test_client_handoff import _register
from tests.conftest import csrf_of

SECRET = re.compile(r'id="handoff-secret" class="secret">([^<]+)<')


def _registered(app, admin):
    """A signed-in admin's client on a fresh app's hand-off page: (client, page URL, html)."""
    c = app.test_client()
    admin_sign_in(c, admin)
    handoff = _register(c).headers["Location"]
    return c, handoff, c.get(handoff).get_data(as_text=True)


def _pdf_action(html: str) -> str:
    return re.search(r'action="([^"]+/handoff\.pdf)"', html).group(1)


def _text(pdf: bytes) -> str:
    # pdfplumber keeps each drawn string whole; spaces between words may be dropped.
    return "\n".join(pdf_layout.page_text(pdf))


def test_pdf_has_the_facts_the_secret_once_and_embedded_fonts(app, svc, platform_admin):
    c, handoff, html = _registered(app, platform_admin)
    client_id = handoff.rsplit("/", 2)[1]
    secret = SECRET.search(html).group(1)
    assert 'id="handoff-pdf"' in html and ">PDFで保存<" in html
    first = c.post(_pdf_action(html), data={"csrf_token": csrf_of(html)})
    assert first.status_code == 200, first.get_data(as_text=True)[:300]
    assert first.mimetype == "application/pdf"
    assert first.headers["Cache-Control"] == "no-store"
    assert first.headers["Content-Disposition"].startswith("attachment;")
    text = _text(first.data)
    issuer = svc.settings.issuer.rstrip("/")
    for fact in (issuer, f"{issuer}/.well-known/openid-configuration", client_id,
                 "https://drill.example.test/cb", "https://drill.example.test/cb2",
                 "openid profile school", "client_secret_basic", "かんたん漢字ドリル"):
        assert fact in text, fact
    assert text.count(secret) == 1
    fonts = pdf_layout.fonts(first.data)
    assert fonts and all(f["emb"] == "yes" for f in fonts), fonts
    assert not any("Helvetica" in f["name"] for f in fonts)
    # The Japanese text drawn on the sheet: no overlapping ink on the first page.
    assert not pdf_layout.overlapping(pdf_layout.pages(first.data)[0])

    again = c.post(_pdf_action(html), data={"csrf_token": csrf_of(html)})
    assert again.status_code == 200
    assert secret not in _text(again.data)
    assert "シークレットはもう表示できません" in _text(again.data)
    assert client_id in _text(again.data)
    from sqlalchemy import select

    from idp.store.models import AuditEvent
    with svc.db.session() as s:
        included = [e.details["secret_included"] for e in s.scalars(
            select(AuditEvent).where(AuditEvent.event == "client.handoff_pdf",
                                     AuditEvent.client_id == client_id)
            .order_by(AuditEvent.id))]
    assert included == [True, False]


def test_a_reload_spends_the_secret_for_the_pdf_too(app, platform_admin):
    c, handoff, html = _registered(app, platform_admin)
    secret = SECRET.search(html).group(1)
    reloaded = c.get(handoff).get_data(as_text=True)
    assert 'id="handoff-pdf-help"' not in reloaded
    pdf = c.post(_pdf_action(html), data={"csrf_token": csrf_of(html)})
    assert pdf.status_code == 200 and secret not in _text(pdf.data)


def test_the_held_secret_is_for_its_own_app_only(app, platform_admin):
    c, first, _ = _registered(app, platform_admin)
    second = _register(c, client_name="べつのアプリ").headers["Location"]
    html = c.get(second).get_data(as_text=True)
    secret = SECRET.search(html).group(1)
    first_page = c.get(first).get_data(as_text=True)  # spends the held secret, as the page does
    pdf = c.post(_pdf_action(first_page), data={"csrf_token": csrf_of(first_page)})
    assert secret not in _text(pdf.data)
    pdf = c.post(_pdf_action(html), data={"csrf_token": csrf_of(html)})
    assert secret not in _text(pdf.data)


def test_the_held_secret_expires(app, platform_admin, monkeypatch):
    from idp.admin import clients_views

    # Held already past its time (the session's own clock is left alone).
    monkeypatch.setattr(clients_views, "HANDOFF_PDF_SECONDS", -1)
    c, _, html = _registered(app, platform_admin)
    secret = SECRET.search(html).group(1)
    pdf = c.post(_pdf_action(html), data={"csrf_token": csrf_of(html)})
    assert pdf.status_code == 200 and secret not in _text(pdf.data)


def test_csrf_permissions_and_unknown_apps(app, platform_admin, school_admin):
    c, _, html = _registered(app, platform_admin)
    secret = SECRET.search(html).group(1)
    action = _pdf_action(html)
    assert c.post(action).status_code == 400  # no CSRF token
    assert c.post(action, data={"csrf_token": "forged"}).status_code == 400
    assert c.get(action).status_code == 405
    # Another admin's session (a school admin here; apps are platform admins' only) gets
    # no sheet, with or without a token of its own.
    school = app.test_client()
    admin_sign_in(school, school_admin)
    token = csrf_of(school.get("/admin/").get_data(as_text=True))
    assert school.post(action, data={"csrf_token": token}).status_code == 403
    assert school.post("/admin/clients/no-such-app/handoff.pdf",
                       data={"csrf_token": token}).status_code == 403
    assert c.post("/admin/clients/no-such-app/handoff.pdf",
                  data={"csrf_token": csrf_of(html)}).status_code == 404
    # The refused requests did not spend the secret: the admin's first PDF still has it.
    pdf = c.post(action, data={"csrf_token": csrf_of(html)})
    assert _text(pdf.data).count(secret) == 1
    # A signed-out browser is sent to sign in, never given a PDF.
    anonymous = app.test_client().post(action, data={"csrf_token": csrf_of(html)})
    assert anonymous.status_code in (302, 303, 400)
    assert anonymous.mimetype != "application/pdf"


def test_a_long_address_is_wrapped_whole_never_cut_or_overprinted():
    from idp.admin.handoff_sheet import HandoffFacts, handoff_pdf

    long_uri = "https://drill.example.test/" + "very-long-path/" * 12 + "cb"
    pdf = handoff_pdf(HandoffFacts(
        app_name="かんたん漢字ドリル", issuer="https://id.example.jp",
        discovery_url="https://id.example.jp/.well-known/openid-configuration",
        client_id="abc", auth_method="client_secret_basic", redirect_uris=[long_uri],
        post_logout_redirect_uris=[], scopes=["openid"], id_token_alg="RS256",
        uses_secret=True, secret="s3cr3t"))
    text = _text(pdf)
    assert "…" not in text
    assert long_uri in text.replace("\n", "")
    boxes = pdf_layout.pages(pdf)[0]
    assert not pdf_layout.overlapping(boxes)
    assert max(b.x1 for b in boxes) < 595 - 28  # inside the right margin (A4: 595 pt)
