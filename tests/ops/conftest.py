"""Apps for the operations tests: one with CRL revocation (the test PKI), one behind a
trusted proxy (whose X-Request-ID may be taken), and a way to read the metrics."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from tests.conftest import provider_app


@pytest.fixture(scope="module")
def test_pki(tmp_path_factory):
    from idp.jpki.testing.pki_dir import load_test_pki, write_test_pki

    directory = tmp_path_factory.mktemp("ops-pki")
    write_test_pki(directory, n_cards=1)
    return load_test_pki(directory)


@pytest.fixture(scope="module")
def crl_app(settings_overrides, test_pki) -> Iterator:
    with provider_app({**settings_overrides, "jpki_trust_anchors": [str(test_pki.root_path)],
                       "jpki_revocation": "crl", "jpki_crl_sources": [str(test_pki.crl_path)]}
                      ) as application:
        yield application


@pytest.fixture(scope="module")
def proxied_app(settings_overrides) -> Iterator:
    with provider_app({**settings_overrides, "trusted_proxy_hops": 1}) as application:
        yield application


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SAMPLE = re.compile(r'^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$')


def scrape(client, **kwargs) -> dict[tuple[str, frozenset], float]:
    """``/metrics`` as {(name, labels): value}."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    samples = {}
    for line in response.get_data(as_text=True).splitlines():
        match = SAMPLE.match(line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group("labels") or ""))
            samples[(match.group("name"), labels)] = float(match.group("value"))
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)
