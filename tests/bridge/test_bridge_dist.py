"""The card bridge as people install it: `make dist`'s wheel and zipapp, installed into a
fresh venv that has never seen this repository (issue 12).

The build and the venv are made once per session (tmp folders), so the three tests cost one
build. pyscard comes as a wheel from pip's cache or /opt/wheels when one is there, otherwise
it is built from PyPI once (`pip wheel`, like `make bridge` does)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from bridge_helpers import REPO

import card_bridge

pytestmark = pytest.mark.dist
PYTHON = shutil.which("python3.11") or sys.executable


@dataclass(frozen=True)
class Built:
    wheel: Path
    pyz: Path
    venv: Path

    def run(self, *args: str, python: bool = False) -> subprocess.CompletedProcess[str]:
        exe = [str(self.venv / "bin" / "python")] if python else []
        return _run(*exe, *args, cwd=self.venv)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # No PYTHONPATH and a cwd outside the repository: only what was installed can answer.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def _pyscard_wheels(into: Path) -> Path:
    """A folder with a pyscard wheel for this Python (pyscard is compiled code)."""
    found = subprocess.run([sys.executable, "-m", "pip", "cache", "list", "--format=abspath",
                            "pyscard"], capture_output=True, text=True, check=False).stdout
    candidates = [Path(p) for p in found.split()] + sorted(Path("/opt/wheels").glob("pyscard-*"))
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for wheel in candidates:
        if wheel.suffix == ".whl" and tag in wheel.name:
            shutil.copy(wheel, into)
            return into
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "pyscard>=2.0", "-w", str(into)], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, f"could not get a pyscard wheel: {done.stderr[-2000:]}"
    return into


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    dist = tmp_path_factory.mktemp("dist")
    # What `make dist` runs (the Makefile target is one line calling this script).
    done = _run(sys.executable, str(REPO / "card_bridge" / "packaging" / "build_dist.py"),
                "--out", str(dist), cwd=dist)
    assert done.returncode == 0, done.stderr
    wheel = dist / f"mynagate_card_bridge-{card_bridge.__version__}-py3-none-any.whl"
    pyz = dist / f"mynagate-card-bridge-{card_bridge.__version__}.pyz"
    assert wheel.is_file() and pyz.is_file(), sorted(p.name for p in dist.iterdir())
    venv = tmp_path_factory.mktemp("clean") / "venv"
    done = _run(PYTHON, "-m", "venv", str(venv), cwd=dist)
    assert done.returncode == 0, done.stderr
    pyscard = _pyscard_wheels(tmp_path_factory.mktemp("pyscard"))
    done = _run(str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--find-links",
                str(dist), "--find-links", str(pyscard), "mynagate-card-bridge", cwd=dist)
    assert done.returncode == 0, done.stdout + done.stderr
    return Built(wheel, pyz, venv)


def test_the_wheel_holds_the_bridge_and_needs_only_pyscard(built):
    with zipfile.ZipFile(built.wheel) as whl:
        names = whl.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = whl.read(meta).decode()
        entry_points = whl.read(meta.replace("METADATA", "entry_points.txt")).decode()
    assert "card_bridge/server.py" in names and "card_bridge/sim/model.py" in names
    assert not [n for n in names if n.startswith("idp/") or "/packaging/" in n]
    required = [line.split(":", 1)[1].strip() for line in metadata.splitlines()
                if line.startswith("Requires-Dist:")]
    # The simulator's cryptography is an extra; nothing of the provider (Flask, ...).
    assert [r for r in required if "extra ==" not in r] == ["pyscard>=2.0"]
    assert "mynagate-card-bridge = card_bridge.cli:main" in entry_points


def test_installed_from_the_wheel_into_a_clean_venv(built):
    listed = built.run("-m", "pip", "list", "--format=freeze", python=True).stdout.lower()
    assert "mynagate-card-bridge==" in listed and "pyscard==" in listed
    assert "flask" not in listed and "mynagate==" not in listed
    version = built.run(str(built.venv / "bin" / "mynagate-card-bridge"), "--version")
    assert version.returncode == 0 and card_bridge.__version__ in version.stdout
    helped = built.run(str(built.venv / "bin" / "mynagate-card-bridge"), "--help")
    assert helped.returncode == 0 and "serve" in helped.stdout and "pair" in helped.stdout
    # The bridge in that venv is the wheel's copy, not this repository's.
    where = built.run("-c", "import card_bridge, smartcard; print(card_bridge.__file__)",
                      python=True)
    assert where.returncode == 0 and str(built.venv) in where.stdout
    # The simulator (testing only) says which extra it needs instead of a traceback.
    sim = built.run(str(built.venv / "bin" / "mynagate-card-bridge"), "simulate", "--cert",
                    "c", "--key", "k", "--pin", "1234")
    assert sim.returncode == 1 and "pip install cryptography" in sim.stderr
    assert "Traceback" not in sim.stderr


def test_the_zipapp_runs_with_pyscard_installed_beside_it(built):
    version = built.run(str(built.pyz), "--version", python=True)
    assert version.returncode == 0 and card_bridge.__version__ in version.stdout
    status = built.run(str(built.pyz), "status", "--json", python=True)
    # pyscard is found beside the zipapp: PC/SC answers "ok" or "unavailable" (no pcscd),
    # never a missing module.
    assert '"pcsc"' in status.stdout and "No module named" not in status.stderr
    with zipfile.ZipFile(built.pyz) as pyz:
        assert "__main__.py" in pyz.namelist() and "card_bridge/cli.py" in pyz.namelist()
        assert not [n for n in pyz.namelist() if "packaging" in n or "pyproject" in n]
