"""docker/nginx/nginx.conf with Debian's nginx: a generated copy with only the environment
changed (the upstream names idp1/idp2 pointed at loopback, free ports instead of 8080/8443,
paths in a temporary directory) passes `nginx -t`, and nginx in front of the provider from
test_container_command serves the sample certificate, redirects http to https, fails over
from a dead instance, and keeps /metrics to the inside."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import need
from tests.deploy.conftest import (
    ISSUER,
    NGINX_DIR,
    SAMPLE_CERT,
    find_tool,
    free_port,
    provider_services,
    stop,
    wait_http,
)

pytestmark = pytest.mark.deploy


def adapted_config(directory: Path, upstreams: dict[str, int], http_port: int,
                   https_port: int) -> Path:
    """The committed config with each environment-specific part replaced; every replacement
    must match, so the test notices when the config changes under it."""
    # Without the comments: only directives are adapted.
    text = re.sub(r"(?m)^\s*#.*\n", "", (NGINX_DIR / "nginx.conf").read_text())

    def sub(pattern: str, replacement: str, count: int = 1) -> None:
        nonlocal text
        text, n = re.subn(pattern, replacement, text)
        assert n == count, f"{pattern!r} matched {n} times in nginx.conf, expected {count}"

    # The pid and temp paths first: the test's own directory is under /tmp too.
    sub(r"(?m)(\s)/tmp/", rf"\g<1>{directory}/", count=6)
    for name, port in upstreams.items():
        sub(rf"server {name}:8000 ", f"server 127.0.0.1:{port} ")
    sub(r"listen 8080 default_server;", f"listen 127.0.0.1:{http_port} default_server;")
    sub(r"listen 8443 ssl http2 default_server;",
        f"listen 127.0.0.1:{https_port} ssl http2 default_server;")
    sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", count=2)  # the test host may have no IPv6
    sub(r"/etc/nginx/tls/", f"{SAMPLE_CERT.parent}/", count=2)
    sub(r"worker_processes auto;", "worker_processes 1;")
    sub(r"access_log /dev/stdout;", f"access_log {directory}/access.log;")
    sub(r"root /var/www/acme;", f"root {directory}/acme;")
    path = directory / "nginx.conf"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def nginx_binary():
    tool = find_tool("nginx")
    need(tool is not None, "nginx (Debian package nginx-light) is not installed")
    return tool


def test_the_config_parses(nginx_binary, compose_config, tmp_path):
    upstreams = {name: free_port() for name in provider_services(compose_config)}
    conf = adapted_config(tmp_path, upstreams, free_port(), free_port())
    result = subprocess.run([nginx_binary, "-t", "-q", "-p", str(tmp_path), "-c", str(conf)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_https_through_nginx_to_the_provider(nginx_binary, compose_config, running_provider,
                                             tmp_path):
    names = sorted(provider_services(compose_config))
    # The first instance is the running provider; every other one is down (a free port
    # nobody listens on), so each request that nginx sends there must fail over.
    upstreams = {name: (running_provider.port if i == 0 else free_port())
                 for i, name in enumerate(names)}
    http_port, https_port = free_port(), free_port()
    conf = adapted_config(tmp_path, upstreams, http_port, https_port)
    wait_http(running_provider.url + "/.well-known/openid-configuration", 45,
              running_provider.process, running_provider.log)
    log = tmp_path / "nginx.out"
    with log.open("w") as out:
        nginx = subprocess.Popen([nginx_binary, "-p", str(tmp_path), "-c", str(conf), "-g",
                                  "daemon off;"], stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"https://127.0.0.1:{https_port}"
        alive = wait_http(f"http://127.0.0.1:{http_port}/nginx-healthz", 10, nginx, log)
        assert alive.status_code == 200 and alive.text == "ok\n"

        redirect = requests.get(f"http://127.0.0.1:{http_port}/authorize?x=1",
                                allow_redirects=False, timeout=5)
        assert redirect.status_code == 301
        assert redirect.headers["Location"] == "https://127.0.0.1/authorize?x=1"

        # The sample certificate verifies (its SAN names 127.0.0.1), and each request gets
        # an answer although one of the upstream instances is down.
        for _ in range(4):
            discovery = requests.get(base + "/.well-known/openid-configuration",
                                     verify=str(SAMPLE_CERT), timeout=10)
            assert discovery.status_code == 200, discovery.text
            assert discovery.json()["issuer"] == ISSUER
        assert "Strict-Transport-Security" in discovery.headers  # the provider's own
        assert "nginx/" not in discovery.headers.get("Server", "")  # server_tokens off

        assert requests.get(base + "/metrics", verify=str(SAMPLE_CERT),
                            timeout=5).status_code == 404
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(base + "/", timeout=5)  # and nobody else trusts it
    finally:
        code = stop(nginx)
        time.sleep(0.1)
    assert code == 0, log.read_text()[-2000:]
    errors = log.read_text()
    if len(names) > 1:
        # The dead instance was tried and skipped (a connect error nginx reports).
        assert "Connection refused" in errors, errors[-2000:]
