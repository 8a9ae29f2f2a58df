"""TOTP enrolment shows a QR code beside the key (issue 12): an SVG rendered on the server,
shown only once the enrolment code opened the enrolment, no inline script."""

from __future__ import annotations

import html as htmllib
import re
from urllib.parse import unquote

import pyotp

from idp.signin import totp
from tests.admin.conftest import enrolment_code_for, open_enrolment, own_ip
from tests.admin.test_enrolment_codes import SECRET, password_step
from tests.conftest import csrf_of


def test_qr_code_of_the_key_beside_it(app, svc, make_account):
    admin = make_account("school_admin", totp=False)
    c = own_ip(app.test_client())
    password_step(c, admin)
    closed = c.get("/admin/totp").get_data(as_text=True)
    assert 'id="totp-qr' not in closed and "data:image/svg+xml" not in closed  # no code yet
    assert open_enrolment(c, enrolment_code_for(svc, admin.id)).status_code == 303
    html = c.get("/admin/totp").get_data(as_text=True)
    secret = SECRET.search(html).group(1)
    uri = htmllib.unescape(re.search(r'id="totp-uri">([^<]+)<', html).group(1))
    assert f"secret={secret}" in uri and uri.startswith("otpauth://totp/")
    src = htmllib.unescape(re.search(r'id="totp-qr-image" src="([^"]+)"', html).group(1))
    assert src == totp.provisioning_qr(uri)  # the code of exactly this key
    assert "<svg" in unquote(src) and "<script" not in unquote(src)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert c.post("/admin/totp", data={"csrf_token": csrf_of(html),
                                       "code": pyotp.TOTP(secret).now()}).status_code == 303


def test_no_qr_code_once_enrolled(app, make_account):
    admin = make_account("school_admin")
    c = own_ip(app.test_client())
    password_step(c, admin)
    html = c.get("/admin/totp").get_data(as_text=True)
    assert 'id="totp-qr' not in html and 'id="totp-secret"' not in html
