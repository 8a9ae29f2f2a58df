"""The one settings object: ``IDP_*`` environment variables over an optional TOML file.

Every key is documented in ``config/idp.example.toml``. Validation happens once, at start, so
a misconfigured production deployment refuses to start with a message naming the setting.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class SettingsError(ValueError):
    """A setting is missing or unsafe; the message names the setting to fix."""


def _split_list(value: str | list[str]) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]


@dataclass
class Settings:
    env: str = "production"
    issuer: str = ""
    database_url: str = ""
    redis_url: str = ""
    secret_key: str = ""
    pairwise_secret: str = ""
    keys_dir: str = "var/keys"
    signing_key_retention: int = 14 * 24 * 3600
    workers: int = 1
    trusted_proxy_hops: int = 0
    default_locale: str = "ja"
    code_lifetime: int = 60
    access_token_lifetime: int = 600
    id_token_lifetime: int = 600
    refresh_token_lifetime: int = 14 * 24 * 3600
    refresh_token_idle: int = 3 * 24 * 3600
    session_idle: int = 30 * 60
    session_absolute: int = 12 * 3600
    login_transaction_lifetime: int = 15 * 60
    sector_fetch_timeout: float = 5.0
    allow_http_sector_identifier: bool = False
    outbound_allow: list[str] = field(default_factory=list)
    jpki_trust_anchors: list[str] = field(
        default_factory=lambda: ["config/jpki/auth_ca_2015.pem", "config/jpki/auth_ca_2023.pem"]
    )
    jpki_revocation: str = "ocsp,crl"
    jpki_crl_sources: list[str] = field(default_factory=list)
    jpki_ocsp_url: str = ""
    jpki_crl_refresh_interval: int = 3600
    card_challenge_lifetime: int = 300
    log_level: str = "INFO"
    metrics_allow: list[str] = field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    metrics_token: str = ""

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None,
             environ: dict[str, str] | None = None) -> Settings:
        """Build settings from (lowest first) defaults, TOML file, environment, overrides."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        toml_path = environ.get("IDP_CONFIG")
        if toml_path:
            try:
                with open(toml_path, "rb") as fh:
                    values.update(tomllib.load(fh))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SettingsError(f"IDP_CONFIG: cannot read {toml_path}: {exc}") from exc
        for f in fields(cls):
            key = f"IDP_{f.name.upper()}"
            if key in environ:
                values[f.name] = environ[key]
        values.update(overrides or {})
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        settings = cls()
        for name, raw in values.items():
            setattr(settings, name, _coerce(name, raw, getattr(settings, name)))
        settings._fill_and_validate()
        return settings

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    @property
    def issuer_is_https(self) -> bool:
        return self.issuer.startswith("https://")

    @property
    def issuer_origin(self) -> str:
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    def _fill_and_validate(self) -> None:
        if self.env not in ("production", "development", "test"):
            raise SettingsError("IDP_ENV must be production, development or test")
        if self.default_locale not in ("ja", "en"):
            raise SettingsError("IDP_DEFAULT_LOCALE must be ja or en")
        if self.signing_key_retention < self.id_token_lifetime:
            raise SettingsError("IDP_SIGNING_KEY_RETENTION must be at least "
                                "IDP_ID_TOKEN_LIFETIME: a retired key must outlive its tokens")
        if not 0 <= self.trusted_proxy_hops <= 5:
            raise SettingsError("IDP_TRUSTED_PROXY_HOPS must be between 0 and 5")
        relaxed = self.env in ("development", "test")
        if not self.issuer:
            if not relaxed:
                raise SettingsError("IDP_ISSUER is required (e.g. https://idp.example.jp)")
            self.issuer = "http://127.0.0.1:5000"
        self.issuer = self.issuer.rstrip("/")
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise SettingsError("IDP_ISSUER must be an absolute https URL without query")
        if parts.scheme == "http" and not (relaxed and parts.hostname in LOOPBACK_HOSTS):
            raise SettingsError(
                "IDP_ISSUER must use https (http is allowed only with IDP_ENV=development "
                "on a loopback host)"
            )
        for name in ("secret_key", "pairwise_secret"):
            value = getattr(self, name)
            if not value:
                if not relaxed:
                    raise SettingsError(f"IDP_{name.upper()} is required in production")
                setattr(self, name, secrets.token_urlsafe(32))
            elif len(value) < 16:
                raise SettingsError(f"IDP_{name.upper()} must be at least 16 characters")
        if not self.database_url:
            if not relaxed:
                raise SettingsError("IDP_DATABASE_URL is required in production")
            Path("var").mkdir(exist_ok=True)
            self.database_url = "sqlite:///var/mynagate.db"
        if not self.redis_url and self.workers > 1:
            raise SettingsError(
                "IDP_REDIS_URL is required when IDP_WORKERS > 1: the in-process store is "
                "visible to one process only"
            )
        if not self.redis_url and not relaxed:
            raise SettingsError(
                "IDP_REDIS_URL is required in production (the in-process store loses "
                "sessions on restart and cannot be shared)"
            )
        self._validate_redis_url()
        self._validate_outbound_allow()
        self._validate_metrics_access()
        modes = {"crl", "ocsp", "ocsp,crl", "none"}
        self.jpki_revocation = self.jpki_revocation.replace(" ", "")
        if self.jpki_revocation not in modes:
            raise SettingsError(f"IDP_JPKI_REVOCATION must be one of {sorted(modes)}")
        if self.jpki_revocation == "none" and not relaxed:
            raise SettingsError("IDP_JPKI_REVOCATION=none is allowed only in development")
        if "ocsp" in self.jpki_revocation and not self.jpki_ocsp_url and not relaxed:
            raise SettingsError("IDP_JPKI_OCSP_URL is required for revocation mode "
                                f"{self.jpki_revocation}")
        if "crl" in self.jpki_revocation and not self.jpki_crl_sources and not relaxed:
            raise SettingsError("IDP_JPKI_CRL_SOURCES is required for revocation mode "
                                f"{self.jpki_revocation}")

    def _validate_metrics_access(self) -> None:
        import ipaddress

        try:
            for cidr in self.metrics_allow:
                ipaddress.ip_network(cidr, strict=False)
        except ValueError as exc:
            raise SettingsError(f"IDP_METRICS_ALLOW: {exc} (a list of CIDRs)") from exc
        if self.metrics_token and len(self.metrics_token) < 32:
            raise SettingsError("IDP_METRICS_TOKEN must be at least 32 characters")

    def _validate_redis_url(self) -> None:
        from idp.store.redis_url import parse_redis_url

        if not self.redis_url:
            return
        try:
            parse_redis_url(self.redis_url)
        except ValueError as exc:
            # The message names the URL's fault, never the URL (it may carry a password).
            raise SettingsError(f"IDP_REDIS_URL {exc}") from exc

    def _validate_outbound_allow(self) -> None:
        from idp.outbound import parse_allow_list

        try:
            parse_allow_list(self.outbound_allow)
        except ValueError as exc:
            raise SettingsError(f"IDP_OUTBOUND_ALLOW: {exc}") from exc


def _coerce(name: str, raw: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            return str(raw).strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, list):
            return _split_list(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"IDP_{name.upper()}: {raw!r} is not a valid value") from exc
