"""The one settings object: production refuses unsafe configuration, naming the setting."""

from __future__ import annotations

import pytest

from idp.settings import Settings, SettingsError

SAFE = {"IDP_ISSUER": "https://idp.example.jp", "IDP_DATABASE_URL": "postgresql://db/idp",
        "IDP_REDIS_URL": "redis://cache:6379/0", "IDP_SECRET_KEY": "s" * 32,
        "IDP_PAIRWISE_SECRET": "p" * 32, "IDP_JPKI_REVOCATION": "crl",
        "IDP_JPKI_CRL_SOURCES": "/etc/mynagate/jpki.crl"}


def test_production_defaults_load():
    settings = Settings.load(environ=SAFE)
    assert settings.env == "production"
    assert settings.issuer == "https://idp.example.jp"
    assert settings.jpki_crl_sources == ["/etc/mynagate/jpki.crl"]


@pytest.mark.parametrize("change, named", [
    ({"IDP_SECRET_KEY": ""}, "IDP_SECRET_KEY"),
    ({"IDP_PAIRWISE_SECRET": ""}, "IDP_PAIRWISE_SECRET"),
    ({"IDP_ISSUER": "http://idp.example.jp"}, "IDP_ISSUER"),
    ({"IDP_ISSUER": ""}, "IDP_ISSUER"),
    ({"IDP_REDIS_URL": ""}, "IDP_REDIS_URL"),
    ({"IDP_REDIS_URL": "", "IDP_WORKERS": "4"}, "IDP_REDIS_URL"),
    ({"IDP_DATABASE_URL": ""}, "IDP_DATABASE_URL"),
    ({"IDP_JPKI_REVOCATION": "none"}, "IDP_JPKI_REVOCATION"),
    ({"IDP_JPKI_REVOCATION": "ocsp"}, "IDP_JPKI_OCSP_URL"),
    ({"IDP_WORKERS": "many"}, "IDP_WORKERS"),
    ({"IDP_SECRET_KEY": "short"}, "IDP_SECRET_KEY"),
])
def test_production_refuses_unsafe(change, named):
    with pytest.raises(SettingsError) as info:
        Settings.load(environ={**SAFE, **change})
    assert named in str(info.value)


def test_development_allows_loopback_http_and_generates_secrets():
    settings = Settings.load(environ={"IDP_ENV": "development",
                                      "IDP_DATABASE_URL": "sqlite:///:memory:"})
    assert settings.issuer == "http://127.0.0.1:5000"
    assert len(settings.secret_key) >= 32 and len(settings.pairwise_secret) >= 32
    with pytest.raises(SettingsError, match="IDP_ISSUER"):
        Settings.load(environ={"IDP_ENV": "development", "IDP_ISSUER": "http://example.jp",
                               "IDP_DATABASE_URL": "sqlite:///:memory:"})


def test_in_process_store_with_several_workers_is_refused_even_in_development():
    with pytest.raises(SettingsError, match="IDP_REDIS_URL"):
        Settings.load(environ={"IDP_ENV": "development", "IDP_WORKERS": "2",
                               "IDP_DATABASE_URL": "sqlite:///:memory:"})


def test_toml_file_is_read_and_environment_wins(tmp_path):
    toml = tmp_path / "idp.toml"
    toml.write_text('issuer = "https://from-toml.example.jp/"\nsession_idle = 900\n')
    settings = Settings.load(environ={**SAFE, "IDP_CONFIG": str(toml)})
    assert settings.issuer == "https://idp.example.jp"  # the environment wins
    assert settings.session_idle == 900
    settings = Settings.load(environ={k: v for k, v in SAFE.items() if k != "IDP_ISSUER"}
                             | {"IDP_CONFIG": str(toml)})
    assert settings.issuer == "https://from-toml.example.jp"
    assert settings.session_idle == 900


def test_unknown_toml_key_is_an_error(tmp_path):
    toml = tmp_path / "idp.toml"
    toml.write_text('isuer = "typo"\n')
    with pytest.raises(SettingsError, match="isuer"):
        Settings.load(environ={**SAFE, "IDP_CONFIG": str(toml)})


def test_trusted_proxy_hops_take_the_client_address_from_the_proxy(settings_overrides):
    from flask import request

    from idp.app import create_app

    app = create_app(Settings.load({**settings_overrides, "trusted_proxy_hops": 1},
                                   environ={}))
    seen = {}

    @app.get("/_whoami")
    def whoami():
        seen["ip"] = request.remote_addr
        return "ok"

    app.test_client().get("/_whoami", headers={"X-Forwarded-For": "203.0.113.7"},
                          environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert seen["ip"] == "203.0.113.7"
    plain = create_app(Settings.load(settings_overrides, environ={}))
    plain.add_url_rule("/_whoami", view_func=whoami)
    plain.test_client().get("/_whoami", headers={"X-Forwarded-For": "203.0.113.7"},
                            environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert seen["ip"] == "10.0.0.1"
