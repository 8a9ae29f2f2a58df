"""The token grants' writes (``idp.oidc.tokens``): on PostgreSQL each runs as SQL rendered
once and sent through ``exec_driver_sql`` (:class:`idp.store.db.DriverStatement`), on
SQLite as Core statements. Either way the rows read back as written, and a second
family for one code is refused the way the replay rules expect (IntegrityError, which
``idp.oidc.grants`` answers as a replay). Both backends: run with
MYNAGATE_TEST_BACKEND=postgres too."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError


def _rows(svc, account_id: str, client_id: str, *, refresh: bool):
    from idp.oidc import tokens

    family = tokens.family_row(client_id=client_id, account_id=account_id,
                               code_hash=secrets.token_hex(32), scope="openid profile",
                               auth_time=1_700_000_000, acr="urn:mynagate:acr:card",
                               amr=["hwk", "pin"], sid="sid-1", absolute_lifetime=3600)
    issued = {"access_token": secrets.token_urlsafe(32), "expires_in": 600,
              "scope": "openid profile"}
    if refresh:
        issued["refresh_token"] = secrets.token_urlsafe(32)
    return family, tokens.token_row(issued, tokens.FamilyRef.of_row(family), 3600), issued


def test_a_grants_rows_read_back_as_written(svc, rp, shared_student):
    from idp.oidc import tokens
    from idp.store.models import Token, TokenFamily

    family, token, issued = _rows(svc, shared_student.id, rp.client_id, refresh=True)
    tokens.insert_family_and_token(svc.db, family, token)
    with svc.db.session() as db:
        stored_family = db.get(TokenFamily, family["id"])
        stored_token = db.get(Token, token["id"])
        assert stored_family.amr == ["hwk", "pin"]  # JSON, not an array nor a string
        assert stored_family.expires_at == family["expires_at"]
        assert stored_family.code_hash == family["code_hash"]
        assert stored_token.access_expires_at == token["access_expires_at"]
        assert stored_token.refresh_used_at is None and stored_token.revoked_at is None
    found = tokens.find_refresh_token(svc.db, issued["refresh_token"])
    assert found is not None and found.family.amr == ["hwk", "pin"]


def test_a_second_family_for_one_code_is_an_integrity_error(svc, rp, shared_student):
    """A code that came back after it was spent (a restored store) must not get a second
    family: the write fails as IntegrityError, which the grant answers as a replay."""
    from idp.oidc import tokens
    from idp.store.models import TokenFamily

    family, token, _ = _rows(svc, shared_student.id, rp.client_id, refresh=False)
    tokens.insert_family_and_token(svc.db, family, token)
    again, again_token, _ = _rows(svc, shared_student.id, rp.client_id, refresh=False)
    again["code_hash"] = family["code_hash"]
    again_token["family_id"] = again["id"]
    with pytest.raises(IntegrityError):
        tokens.insert_family_and_token(svc.db, again, again_token)
    with svc.db.session() as db:
        assert db.scalars(select(TokenFamily.id).where(
            TokenFamily.code_hash == family["code_hash"])).all() == [family["id"]]


def test_a_rotation_claims_once_and_writes_its_successor(svc, rp, shared_student):
    from idp.oidc import tokens
    from idp.store.models import Token

    family, token, issued = _rows(svc, shared_student.id, rp.client_id, refresh=True)
    tokens.insert_family_and_token(svc.db, family, token)
    ref = tokens.FamilyRef.of_row(family)
    successor = tokens.token_row({"access_token": secrets.token_urlsafe(32),
                                  "refresh_token": secrets.token_urlsafe(32),
                                  "expires_in": 600, "scope": "openid"}, ref, 3600)
    assert tokens.rotate_refresh_token(svc.db, token["id"], successor) is True
    # The same refresh token again (a replay, or the loser of a race): nothing written.
    late = tokens.token_row({"access_token": secrets.token_urlsafe(32),
                             "refresh_token": secrets.token_urlsafe(32),
                             "expires_in": 600, "scope": "openid"}, ref, 3600)
    assert tokens.rotate_refresh_token(svc.db, token["id"], late) is False
    with svc.db.session() as db:
        assert db.get(Token, token["id"]).refresh_used_at is not None
        assert db.get(Token, successor["id"]) is not None
        assert db.get(Token, late["id"]) is None
