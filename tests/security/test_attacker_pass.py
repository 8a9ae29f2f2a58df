"""Findings of the independent attacker's pass over the trust hardening (issue 8), each kept
as the regression test that showed it."""

from __future__ import annotations

import hashlib
from datetime import UTC

from tests.admin.conftest import admin_sign_in, own_ip
from tests.conftest import Browser, query_of
from tests.oidc.conftest import random_ip


# ------------------------------------------- one account's TOTP never counts for the next
def test_a_teachers_totp_does_not_carry_over_to_an_admin_signed_in_by_password(
        app, make_account):
    """A teacher who knows the school admin's password passes TOTP as themselves, then signs
    in on the ordinary page with the admin's password only: the admin area asks for TOTP."""
    teacher = make_account("teacher")
    target = make_account("school_admin")
    c = own_ip(app.test_client())
    admin_sign_in(c, teacher)
    signed_in = Browser(c).password_login(c.get("/login"), target)
    assert signed_in.status_code == 303
    assert c.get("/admin/accounts").status_code == 303


def test_a_teachers_totp_does_not_make_a_password_linked_admin_card_count(
        crl_app, crl_svc, make_account, new_card):
    from cryptography.hazmat.primitives import serialization

    from idp.accounts.cards import CardIdentity, bind_card
    from idp.store.models import Account
    from tests.card.helpers import CardBrowser

    teacher = make_account("teacher")
    target = make_account("school_admin")
    card = new_card()
    cert = card.certificate
    with crl_svc.db.session() as db:
        bind_card(db, db.get(Account, target.id), CardIdentity(
            cert.issuer.rfc4514_string(), format(cert.serial_number, "x"),
            hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
            cert.not_valid_after_utc.astimezone(UTC).replace(tzinfo=None)), ip=None,
            linked_with_mfa=False)
    c = own_ip(crl_app.test_client())
    admin_sign_in(c, teacher)
    tapped = CardBrowser(c).use_card(card)
    assert tapped.status_code == 200, tapped.get_json()
    assert c.get("/admin/accounts").status_code == 303


# ------------------------------------------------ a reset ends every way back in
def test_a_reset_code_ends_the_attackers_browser_session(app, rp, make_student, school_admin,
                                                         token_of):
    """Someone who knew the child's password stays signed in in their own browser; the
    admin issues a reset code: that browser gets no fresh code without a password."""
    student = make_student()
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = random_ip()
    browser = Browser(attacker)
    browser.sign_in_and_authorize(rp, student)
    issued = app.test_client().post(f"/api/admin/accounts/{student.id}/reset-code",
                                    headers=token_of(school_admin))
    assert issued.status_code == 201
    again, _verifier = browser.authorize(rp)
    location = again.headers["Location"]
    assert location.startswith("/login"), location
    assert "code" not in query_of(location)


def test_ending_an_admins_access_ends_their_admin_api_tokens(app, make_account, token_of,
                                                             platform_admin):
    """An API token minted by someone who got into admin X's area once stops working when
    the platform admin ends X's sessions (and when X is reset)."""
    victim = make_account("school_admin")
    stolen = token_of(victim)
    assert app.test_client().get("/api/admin/accounts", headers=stolen).status_code == 200
    boss = token_of(platform_admin)
    ended = app.test_client().post(f"/api/admin/accounts/{victim.id}/end-sessions",
                                   headers=boss)
    assert ended.status_code == 200
    assert app.test_client().get("/api/admin/accounts", headers=stolen).status_code == 401
    # A token made afterwards (by X, signed in again) works.
    assert app.test_client().get("/api/admin/accounts",
                                 headers=token_of(victim)).status_code == 200


# ------------------------------------------------ the JSON depth check stays linear
def test_an_unterminated_string_is_consumed_once_not_rescanned():
    """64 KiB of '"\\' pairs: one quote that never closes. The string pattern takes it in
    one match (before, every later quote rescanned to the end: ~40 s of one worker)."""
    from idp.input_limits import _STRING, json_depth

    body = (b"{" + b'"\\' * 32000)[:64 * 1024]
    assert len(list(_STRING.finditer(body))) == 1
    assert json_depth(body) == 1
    assert json_depth(b'["ab\\') == 1 and json_depth(b'[["x\\"]"]]') == 2
