"""docker/compose.yaml as Debian's docker-compose reads it (no Docker engine needed): valid
with the filled env.example, refused without the secrets, and built the way
docs/operations.md describes (nginx in front of two or more instances, a one-shot migrate
service, one shared keys volume, health checks, nobody root where the image is ours)."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.deploy.conftest import (
    COMPOSE_FILE,
    DOCKER,
    NGINX_DIR,
    SAMPLE_CERT,
    filled_env,
    provider_services,
    run_compose_config,
)

pytestmark = pytest.mark.deploy

# Images whose entrypoint we do not write and that drop root themselves: postgres starts as
# root to prepare its data directory, then runs the server as its postgres user.
DROPS_ROOT_ITSELF = {"db"}


def test_the_unfilled_env_example_is_refused_with_the_setting_to_fix(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text((DOCKER / "env.example").read_text())
    result = run_compose_config(env_file)
    assert result.returncode != 0
    assert re.search(r"POSTGRES_PASSWORD|IDP_SECRET_KEY|IDP_PAIRWISE_SECRET", result.stderr), \
        result.stderr


def test_two_or_more_provider_instances_behind_nginx(compose_config):
    services = compose_config["services"]
    providers = provider_services(compose_config)
    assert len(providers) >= 2, sorted(providers)
    images = {svc["image"] for svc in providers.values()}
    assert images == {services["migrate"]["image"]}  # the image migrate builds
    environments = [svc["environment"] for svc in providers.values()]
    assert all(env == environments[0] for env in environments)
    env = environments[0]
    assert env["IDP_ENV"] == "production"
    assert str(env["IDP_TRUSTED_PROXY_HOPS"]) == "1"  # nginx, exactly one hop
    assert int(env["IDP_WORKERS"]) > 1  # gunicorn
    assert env["IDP_REDIS_URL"].startswith("redis://redis:")
    assert "@db:5432/" in env["IDP_DATABASE_URL"]
    for name, svc in providers.items():
        assert not svc.get("ports"), f"{name} publishes a port: only nginx faces the network"
        depends = svc["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    nginx = services["nginx"]
    assert {p if isinstance(p, str) else f"{p['published']}:{p['target']}"
            for p in nginx["ports"]} == {"80:8080", "443:8443"}
    for name in providers:
        assert nginx["depends_on"][name]["condition"] == "service_healthy", name
    published = [n for n, svc in services.items() if svc.get("ports")]
    assert published == ["nginx"]


def test_the_upstream_lists_exactly_the_provider_services(compose_config):
    conf = (NGINX_DIR / "nginx.conf").read_text()
    upstream = re.search(r"upstream mynagate \{(.*?)\}", conf, re.S).group(1)
    servers = re.findall(r"^\s*server (\S+):8000 (.*);", upstream, re.M)
    assert {host for host, _ in servers} == set(provider_services(compose_config))
    assert all("max_fails=" in opts and "fail_timeout=" in opts for _, opts in servers)
    retry = re.search(r"proxy_next_upstream (.*);", conf).group(1).split()
    assert "error" in retry and "timeout" in retry
    assert "non_idempotent" not in retry  # a POST that reached an instance is never resent
    assert "X-Forwarded-For $remote_addr" in conf
    assert "X-Forwarded-Proto $scheme" in conf
    assert "return 301 https://$host$request_uri" in conf


def test_the_migrate_service_runs_once_before_the_instances(compose_config):
    migrate = compose_config["services"]["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate.get("restart", "no") == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert migrate["build"]["dockerfile"].endswith("docker/Dockerfile")


def test_every_long_running_service_has_a_healthcheck(compose_config):
    for name, svc in compose_config["services"].items():
        if name == "migrate":
            continue
        test = svc.get("healthcheck", {}).get("test")
        assert test and not svc["healthcheck"].get("disable"), f"{name} has no healthcheck"
    for svc in provider_services(compose_config).values():
        assert any("/healthz" in part for part in svc["healthcheck"]["test"])


def test_nobody_runs_as_root_where_we_control_it(compose_config, dockerfile):
    for name, svc in compose_config["services"].items():
        if name in DROPS_ROOT_ITSELF:
            continue
        user = str(svc.get("user", ""))
        assert user, f"{name} sets no user"
        uid = user.split(":")[0]
        assert uid not in ("0", "root"), f"{name} runs as {user}"
    user = dockerfile.last("USER")
    assert user.split(":")[0] not in ("0", "root")
    assert dockerfile.final[0][1].startswith("python:3.11-slim")


def test_the_signing_keys_are_one_volume_shared_by_every_instance(compose_config):
    def keys_mounts(svc):
        found = []
        for volume in svc.get("volumes", []):
            if isinstance(volume, str):
                source, target = volume.split(":")[:2]
            else:
                source, target = volume.get("source"), volume.get("target")
            if target == svc["environment"]["IDP_KEYS_DIR"]:
                found.append(source)
        return found

    services = compose_config["services"]
    sharing = list(provider_services(compose_config).values()) + [services["migrate"]]
    sources = [keys_mounts(svc) for svc in sharing]
    assert all(len(found) == 1 for found in sources), sources
    assert {found[0] for found in sources} == {"keys"}
    assert "keys" in compose_config["volumes"]  # a named volume, not a per-container path


def test_nginx_mounts_the_committed_config_and_certificate(compose_config):
    mounts = {}
    for volume in compose_config["services"]["nginx"]["volumes"]:
        source, target = (volume.split(":")[:2] if isinstance(volume, str)
                          else (volume["source"], volume["target"]))
        mounts[target] = source
    assert mounts["/etc/nginx/nginx.conf"].endswith("docker/nginx/nginx.conf")
    assert mounts["/etc/nginx/tls"].endswith("docker/nginx/tls")
    assert (NGINX_DIR / "tls" / "key.pem").exists() and SAMPLE_CERT.exists()
    assert "SAMPLE" in (NGINX_DIR / "tls" / "README.md").read_text()


def test_the_sample_certificate_script_makes_a_usable_certificate(tmp_path):
    result = subprocess.run(["sh", str(NGINX_DIR / "make-sample-cert.sh"), str(tmp_path),
                             "idp.board.test"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    text = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "cert.pem"), "-noout",
                           "-subject", "-ext", "subjectAltName"],
                          capture_output=True, text=True, check=True).stdout
    assert "SAMPLE" in text and "idp.board.test" in text and "127.0.0.1" in text
    # The committed one is still valid for a year (else: run the script and commit).
    assert subprocess.run(["openssl", "x509", "-in", str(SAMPLE_CERT), "-noout",
                           "-checkend", str(365 * 24 * 3600)]).returncode == 0


def test_env_example_names_every_variable_the_compose_file_needs(test_pki):
    needed = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE_FILE.read_text()))
    assert needed <= set(filled_env(test_pki)), needed - set(filled_env(test_pki))
