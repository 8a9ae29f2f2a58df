"""config/idp.example.toml documents every setting: its key, its IDP_* name and its default."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields

from idp.settings import Settings
from tests.conftest import ROOT

EXAMPLE = ROOT / "config" / "idp.example.toml"
SETTING_LINE = re.compile(r"^# ([a-z_]+) = (.+)$")


def _documented() -> dict[str, str]:
    found = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = SETTING_LINE.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_example_config_lists_every_setting_with_its_env_name():
    documented = _documented()
    names = {f.name for f in fields(Settings)}
    assert set(documented) == names
    text = EXAMPLE.read_text(encoding="utf-8")
    for name in names:
        assert f"IDP_{name.upper()}" in text, name


def test_example_config_defaults_are_the_real_defaults(tmp_path):
    documented = _documented()
    uncommented = "\n".join(f"{key} = {value}" for key, value in documented.items())
    values = tomllib.loads(uncommented)
    defaults = Settings()
    for name, value in values.items():
        assert value == getattr(defaults, name), name
    # And the file, uncommented, is a config the loader accepts (with what production needs).
    path = tmp_path / "idp.toml"
    path.write_text(uncommented, encoding="utf-8")
    settings = Settings.load(
        {"issuer": "https://idp.example.jp", "database_url": "sqlite:///x.db",
         "redis_url": "redis://127.0.0.1:6379/0", "secret_key": "s" * 32,
         "pairwise_secret": "p" * 32, "jpki_ocsp_url": "http://ocsp.example.jp",
         "jpki_crl_sources": ["/srv/crl.der"]},
        environ={"IDP_CONFIG": str(path)})
    assert settings.code_lifetime == 60
