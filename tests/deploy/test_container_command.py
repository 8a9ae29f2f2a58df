"""The container's command runs as-is against local PostgreSQL and Redis: the migrate
service's `db upgrade`, then a provider service's `serve` (gunicorn with IDP_WORKERS
processes, IDP_ENV=production, the compose environment with only the host names, the keys
path and the port changed); /healthz, /readyz and discovery answer; SIGTERM stops it."""

from __future__ import annotations

import importlib.util
import subprocess

import pytest
import requests

from tests.conftest import ROOT
from tests.deploy.conftest import ISSUER, adapt_argv, provider_services, wait_http

pytestmark = pytest.mark.deploy

# /healthz and /readyz come with idp/ops (the observability work); until that is merged the
# discovery document stands in for them.
HAS_PROBES = importlib.util.find_spec("idp.ops") is not None


def test_compose_runs_the_images_own_command(compose_config, dockerfile):
    # The provider services run the image's CMD unchanged, so `docker run mynagate` and
    # the compose file start the same server.
    for name, service in provider_services(compose_config).items():
        assert service["command"] == dockerfile.cmd, name
    assert dockerfile.entrypoint == ["idp"]
    assert compose_config["services"]["migrate"]["command"] == ["db", "upgrade"]


def test_the_commands_run_the_code_under_test(running_provider):
    found = subprocess.run([str(running_provider.serve_argv[0]).replace("/idp", "/python"),
                            "-c", "import idp; print(idp.__file__)"],
                           env=running_provider.env, capture_output=True, text=True, timeout=30)
    assert found.stdout.strip() == str(ROOT / "idp" / "__init__.py"), found


def test_the_provider_starts_in_production_mode_and_answers(running_provider):
    env = running_provider.env
    assert env["IDP_ENV"] == "production" and int(env["IDP_WORKERS"]) > 1
    probe = "/healthz" if HAS_PROBES else "/.well-known/openid-configuration"
    first = wait_http(running_provider.url + probe, 45, running_provider.process,
                      running_provider.log)
    assert first.status_code == 200, first.text
    if HAS_PROBES:
        assert first.json() == {"status": "ok"}
        ready = requests.get(running_provider.url + "/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert {"database", "store", "signing_keys", "revocation_data"} <= set(checks)
        assert all(check["status"] == "ok" for check in checks.values()), checks
    discovery = requests.get(running_provider.url + "/.well-known/openid-configuration",
                             timeout=5)
    assert discovery.status_code == 200
    assert discovery.json()["issuer"] == ISSUER
    assert discovery.json()["jwks_uri"] == ISSUER + "/jwks.json"
    jwks = requests.get(running_provider.url + "/jwks.json", timeout=5).json()
    assert sorted(k["alg"] for k in jwks["keys"]) == ["ES256", "ES256", "RS256", "RS256"]
    log = running_provider.log.read_text()
    assert "gunicorn" in log.lower() or "Booting worker" in log, log[-2000:]


@pytest.mark.skipif(not HAS_PROBES, reason="/healthz arrives with idp/ops")
def test_the_image_and_compose_healthchecks_pass(running_provider, dockerfile, compose_config):
    wait_http(running_provider.url + "/healthz", 45, running_provider.process,
              running_provider.log)
    commands = [dockerfile.healthcheck]
    for service in provider_services(compose_config).values():
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD"
        commands.append(test[1:])
    for argv in commands:
        argv = adapt_argv(argv, running_provider.port)
        argv = [part.replace("127.0.0.1:8000", f"127.0.0.1:{running_provider.port}")
                for part in argv]
        assert any("/healthz" in part for part in argv), argv
        result = subprocess.run(argv, env=running_provider.env, capture_output=True,
                                text=True, timeout=15)
        assert result.returncode == 0, (argv, result.stderr)
