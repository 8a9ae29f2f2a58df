"""The ``idp`` command line: every command has --help, bad arguments exit non-zero with one
clear line, and the happy paths do what they say."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from idp.cli import cli, register_extra_commands

register_extra_commands()


@pytest.fixture
def run(tmp_path, backend_urls, keys_dir):
    env = {"IDP_ENV": "test", "IDP_DATABASE_URL": backend_urls["database_url"],
           "IDP_REDIS_URL": backend_urls["redis_url"], "IDP_KEYS_DIR": keys_dir,
           "IDP_SECRET_KEY": "cli-secret-key-0123456789",
           "IDP_PAIRWISE_SECRET": "cli-pairwise-secret-0123456789",
           "IDP_JPKI_REVOCATION": "none", "IDP_JPKI_TRUST_ANCHORS": ""}
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, list(args), env=env, input=input, catch_exceptions=False)

    assert invoke("db", "upgrade").exit_code == 0
    return invoke


def all_commands(group, prefix=()):
    import click

    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", sorted(all_commands(cli)))
def test_every_command_has_help(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_school_account_client_lifecycle(run):
    from tests.conftest import unique

    code = unique("cli")
    result = run("school", "create", "--code", code, "--name", "コマンド小学校")
    assert result.exit_code == 0, result.output
    result = run("account", "create", "--school", code, "--login", "taro",
                 "--password-stdin", input="a long enough passphrase\n")
    assert result.exit_code == 0, result.output
    result = run("client", "create", "--name", "算数", "--redirect-uri",
                 "https://math.example.jp/cb", "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["client_secret"] and created["sector"] == "math.example.jp"
    listed = json.loads(run("client", "list", "--json").output)
    assert created["client_id"] in [c["client_id"] for c in listed]
    assert "client_secret" not in json.dumps(listed)
    assert all(c in "0123456789abcdef" for c in created["client_id"])  # never starts with -
    assert run("client", "delete", created["client_id"]).exit_code == 0
    listed = json.loads(run("client", "list", "--json").output)
    assert created["client_id"] not in [c["client_id"] for c in listed]


@pytest.mark.parametrize("args, message", [
    (["school", "create", "--code", "", "--name", "x"], "--code"),
    (["account", "create", "--school", "no-such-school", "--login", "a"], "no school"),
    (["client", "create", "--name", "x", "--redirect-uri", "http://evil.example/cb"],
     "https"),
    (["client", "create", "--name", "x", "--redirect-uri", "https://a.example/cb",
      "--redirect-uri", "https://b.example/cb"], "sector_identifier_uri"),
    (["client", "create", "--name", "x", "--redirect-uri", "https://a.example/cb",
      "--auth-method", "private_key_jwt"], "jwks"),
    (["client", "delete", "nope"], "no client"),
])
def test_bad_arguments_exit_nonzero_with_one_line(run, args, message):
    result = run(*args)
    assert result.exit_code != 0
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and message in lines[0], result.output


def test_weak_password_is_refused(run):
    from tests.conftest import unique

    code = unique("cli")
    run("school", "create", "--code", code, "--name", "x")
    result = run("account", "create", "--school", code, "--login", "hanako",
                 "--password-stdin", input="password\n")
    assert result.exit_code != 0
    assert "password refused" in result.output


def test_production_without_secrets_refuses_to_start():
    result = CliRunner().invoke(cli, ["client", "list"], env={
        "IDP_ENV": "production", "IDP_ISSUER": "https://idp.example.jp",
        "IDP_SECRET_KEY": "", "IDP_PAIRWISE_SECRET": "", "IDP_DATABASE_URL": "",
        "IDP_REDIS_URL": ""})
    assert result.exit_code != 0
    assert "IDP_" in result.output


def test_an_older_client_id_starting_with_a_dash_can_be_deleted(run, svc):
    from idp.clients.registry import ClientSpec, build_client

    row, _ = build_client(ClientSpec(name="古いアプリ",
                                     redirect_uris=["https://old.example.jp/cb"],
                                     post_logout_redirect_uris=[]),
                          "old.example.jp")
    row.client_id = "-" + row.client_id[:20]  # as base64url ids could be, before hex
    with svc.db.session() as s:
        s.add(row)
    result = run("client", "delete", "--", row.client_id)
    assert result.exit_code == 0, result.output
