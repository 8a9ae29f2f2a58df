"""ID token signing keys: listed in the database, private halves only in IDP_KEYS_DIR,
announced before they sign, rotated without breaking tokens already issued, seen by every
worker. Each test has a database of its own (a rotation would change the shared one)."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from joserfc import jwt
from sqlalchemy import select, update

from idp import keys as signing
from idp.oidc.id_token import issue_id_token
from idp.signin.context import AuthContext
from idp.store.models import SigningKey, utcnow
from tests.conftest import BACKEND, PG_ADMIN_URL, fresh_postgres_database


@pytest.fixture
def own_database(tmp_path):
    """A migrated database of this test's own, on the selected backend."""
    from idp.store.db import Database
    from idp.store.migrate import upgrade_database

    if BACKEND == "postgres":
        with fresh_postgres_database("mynagate_keys_") as name:
            url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
            upgrade_database(url)
            database = Database(url)
            yield database
            database.dispose()
        return
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    upgrade_database(url)
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture
def keys_dir(tmp_path):
    return tmp_path / "keys"


def worker(database, keys_dir, retention: int = 3600) -> signing.SigningKeys:
    return signing.SigningKeys(database, keys_dir, retention)


def an_id_token(keys: signing.SigningKeys, alg: str = "RS256") -> str:
    client = SimpleNamespace(client_id="rp-1", sector="rp.example.test",
                             id_token_signed_response_alg=alg)
    account = SimpleNamespace(id="account-1")
    return issue_id_token(keys=keys, issuer="https://idp.example.test",
                          pairwise_secret="pairwise-secret-0123456789", client_row=client,
                          account=account, scopes=["openid"],
                          auth=AuthContext(0, "urn:mynagate:acr:password", ["pwd"], "sid"),
                          lifetime=600)


def kid_of(token: str) -> str:
    from joserfc import jws

    return jws.extract_compact(token.encode()).protected["kid"]


def rows(database) -> list[SigningKey]:
    with database.session() as db:
        return list(db.scalars(select(SigningKey).order_by(SigningKey.created_at)))


def test_first_use_makes_an_active_and_a_next_key_per_algorithm(own_database, keys_dir):
    keys = worker(own_database, keys_dir)
    published = keys.public_jwks()["keys"]
    assert sorted((k["alg"], k["use"]) for k in published) == [
        ("ES256", "sig"), ("ES256", "sig"), ("RS256", "sig"), ("RS256", "sig")]
    listed = rows(own_database)
    assert sorted((r.alg, r.state) for r in listed) == [
        ("ES256", "active"), ("ES256", "next"), ("RS256", "active"), ("RS256", "next")]
    for row in listed:
        # The database holds public halves only; each private half is a 0600 file.
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(row.public_jwk), row.public_jwk
        path = keys_dir / f"{row.kid}.jwk.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert "d" in json.loads(path.read_text())
    active_rs = next(r.kid for r in listed if r.alg == "RS256" and r.state == "active")
    assert keys.kid("RS256") == active_rs
    # A second worker on the same database and directory uses the same keys.
    assert worker(own_database, keys_dir).kid("RS256") == active_rs


def test_rotation_signs_with_the_announced_key_and_old_tokens_still_verify(own_database,
                                                                           keys_dir):
    keys = worker(own_database, keys_dir)
    before = an_id_token(keys)
    old_kid = kid_of(before)
    announced = next(r.kid for r in rows(own_database)
                     if r.alg == "RS256" and r.state == "next")
    assert announced in {k["kid"] for k in keys.public_jwks()["keys"]}
    with own_database.session() as db:
        promoted = signing.rotate(db, keys_dir, ["RS256"])
    assert [r.kid for r in promoted] == [announced]
    keys.refresh()
    after = an_id_token(keys)
    assert kid_of(after) == announced
    published = {k["kid"] for k in keys.public_jwks()["keys"]}
    assert old_kid in published and announced in published
    assert len(published) == 5  # RS256 retired + active + a new next; ES256 untouched
    # The token signed before the rotation still verifies against the published keys.
    assert jwt.decode(before, keys.public_keyset(), algorithms=["RS256"]).claims["aud"] == "rp-1"
    assert jwt.decode(after, keys.public_keyset(), algorithms=["RS256"]).claims["aud"] == "rp-1"
    # The retired key can no longer sign anything: its private half is gone.
    assert not (keys_dir / f"{old_kid}.jwk.json").exists()
    states = {r.kid: r.state for r in rows(own_database)}
    assert states[old_kid] == "retired" and states[announced] == "active"


def test_every_worker_picks_up_a_rotation_by_itself(own_database, keys_dir, monkeypatch):
    first, second = worker(own_database, keys_dir), worker(own_database, keys_dir)
    assert first.kid("ES256") == second.kid("ES256")
    with own_database.session() as db:
        new_kid = signing.rotate(db, keys_dir, ["ES256"])[0].kid
    assert second.kid("ES256") != new_kid  # its copy is fresh for REFRESH_SECONDS
    monkeypatch.setattr(signing, "REFRESH_SECONDS", 0.0)
    assert second.kid("ES256") == new_kid
    assert kid_of(an_id_token(second, "ES256")) == new_kid


def test_a_worker_keeps_its_keys_while_the_database_is_away(own_database, keys_dir,
                                                             monkeypatch):
    from sqlalchemy.exc import OperationalError

    keys = worker(own_database, keys_dir)
    kid, jwks = keys.kid("RS256"), keys.public_jwks()

    def down():
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(signing, "REFRESH_SECONDS", 0.0)
    monkeypatch.setattr(own_database, "session", down)
    assert keys.kid("RS256") == kid and keys.public_jwks() == jwks
    # With no earlier copy, there is nothing to fall back on: the error reaches the caller
    # (the app answers 503).
    with pytest.raises(OperationalError):
        worker(own_database, keys_dir).public_jwks()


def test_retired_keys_leave_the_jwks_after_the_retention_and_prune_removes_them(
        own_database, keys_dir):
    keys = worker(own_database, keys_dir, retention=600)
    old_kid = keys.kid("RS256")
    with own_database.session() as db:
        signing.rotate(db, keys_dir, ["RS256"])
    keys.refresh()
    assert old_kid in {k["kid"] for k in keys.public_jwks()["keys"]}
    with own_database.session() as db:
        db.execute(update(SigningKey).where(SigningKey.kid == old_kid)
                   .values(retired_at=utcnow() - timedelta(seconds=601)))
    keys.refresh()
    assert old_kid not in {k["kid"] for k in keys.public_jwks()["keys"]}
    with own_database.session() as db:
        assert signing.prune(db, 600) == [old_kid]
    assert old_kid not in {r.kid for r in rows(own_database)}


def test_a_key_file_from_before_the_list_stays_the_active_key(own_database, keys_dir):
    from joserfc.jwk import RSAKey

    legacy = RSAKey.generate_key(2048, auto_kid=True)
    keys_dir.mkdir()
    (keys_dir / "rs256.jwk.json").write_text(json.dumps(legacy.as_dict(private=True)))
    assert worker(own_database, keys_dir).kid("RS256") == legacy.kid


def test_a_missing_private_half_is_a_clear_error(own_database, keys_dir):
    kid = worker(own_database, keys_dir).kid("RS256")
    (keys_dir / f"{kid}.jwk.json").unlink()
    with pytest.raises(signing.KeyFileMissing, match="IDP_KEYS_DIR"):
        worker(own_database, keys_dir).public_jwks()


def test_rotating_an_unknown_algorithm_is_refused(own_database, keys_dir):
    with own_database.session() as db, pytest.raises(ValueError, match="HS256"):
        signing.rotate(db, keys_dir, ["HS256"])


def test_retention_shorter_than_an_id_token_is_refused():
    from idp.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="IDP_SIGNING_KEY_RETENTION"):
        Settings.load({"env": "test", "signing_key_retention": 60, "id_token_lifetime": 600},
                      environ={})


# ----------------------------------------------------------------------------- the CLI
@pytest.fixture
def idp_cli(own_database, keys_dir):
    from idp.cli import cli, register_extra_commands

    register_extra_commands()
    env = {"IDP_ENV": "test", "IDP_DATABASE_URL": str(own_database.engine.url.render_as_string(
        hide_password=False)), "IDP_REDIS_URL": "", "IDP_KEYS_DIR": str(keys_dir),
        "IDP_SECRET_KEY": "cli-secret-key-0123456789",
        "IDP_PAIRWISE_SECRET": "cli-pairwise-secret-0123456789",
        "IDP_JPKI_REVOCATION": "none", "IDP_JPKI_TRUST_ANCHORS": ""}

    def invoke(*args):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def test_keys_commands_list_rotate_and_prune(idp_cli):
    listed = idp_cli("keys", "list", "--json")
    assert listed.exit_code == 0, listed.output
    before = json.loads(listed.output)
    next_rs = next(k["kid"] for k in before if k["alg"] == "RS256" and k["state"] == "next")
    rotated = idp_cli("keys", "rotate", "--alg", "RS256", "--json")
    assert rotated.exit_code == 0, rotated.output
    assert [k["kid"] for k in json.loads(rotated.output)] == [next_rs]
    after = {k["kid"]: k["state"] for k in json.loads(idp_cli("keys", "list", "--json").output)}
    assert after[next_rs] == "active" and list(after.values()).count("retired") == 1
    pruned = idp_cli("keys", "prune")
    assert pruned.exit_code == 0 and "removed 0" in pruned.output  # still within retention
    refused = idp_cli("keys", "rotate", "--alg", "HS256")
    assert refused.exit_code != 0 and "HS256" in refused.output


def test_serve_refuses_to_start_without_the_private_key(idp_cli, own_database, keys_dir,
                                                         monkeypatch):
    import werkzeug.serving

    def must_not_serve(*args, **kwargs):
        raise AssertionError("served without its signing key")

    monkeypatch.setattr(werkzeug.serving, "run_simple", must_not_serve)
    assert idp_cli("keys", "list").exit_code == 0
    active = next(r.kid for r in rows(own_database) if r.state == "active")
    (keys_dir / f"{active}.jwk.json").unlink()
    result = idp_cli("serve", "--port", "5999")
    assert result.exit_code == 2
    assert "IDP_KEYS_DIR" in result.output and active in result.output
