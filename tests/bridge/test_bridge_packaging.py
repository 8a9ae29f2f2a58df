"""The Windows and macOS installers' recipes (card_bridge/packaging/). They cannot be built
on this Linux machine (no Inno Setup, no pkgbuild); these tests check what can be checked
here: the macOS script lays out the right payload and LaunchAgent (with a stand-in
`pkgbuild` that records what it was given), the plist is valid, the Inno Setup script
autostarts the bridge with the origin it asked for, and the PyInstaller recipe parses."""

from __future__ import annotations

import ast
import os
import plistlib
import stat
import subprocess
from pathlib import Path

import pytest
from bridge_helpers import REPO

import card_bridge

PACKAGING = REPO / "card_bridge" / "packaging"
ORIGIN = "https://id.example.ed.jp"

FAKE_PKGBUILD = """#!/bin/sh
# Stand-in for macOS pkgbuild: record the arguments and the payload it would pack.
echo "$@" > "$RECORD/args"
while [ $# -gt 1 ]; do
  case "$1" in
    --root) cp -R "$2" "$RECORD/payload" ;;
    --scripts) cp -R "$2" "$RECORD/scripts" ;;
  esac
  shift
done
touch "$1"
"""


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _build_pkg(tmp_path: Path, origin: str) -> subprocess.CompletedProcess[str]:
    built = tmp_path / "built" / "mynagate-card-bridge"
    built.mkdir(parents=True)
    _executable(built / "mynagate-card-bridge", "#!/bin/sh\n")
    tools = tmp_path / "bin"
    tools.mkdir()
    _executable(tools / "pkgbuild", FAKE_PKGBUILD)
    record = tmp_path / "record"
    record.mkdir()
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "RECORD": str(record),
           "PROVIDER_ORIGIN": origin, "SKIP_PYINSTALLER": "1", "BUILT": str(built),
           "OUT_DIR": str(tmp_path / "out")}
    return subprocess.run(["sh", str(PACKAGING / "build-macos-pkg.sh")], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_macos_package_installs_the_bridge_and_a_launch_agent(tmp_path):
    done = _build_pkg(tmp_path, ORIGIN)
    assert done.returncode == 0, done.stderr
    record = tmp_path / "record"
    args = (record / "args").read_text().split()
    assert args[args.index("--identifier") + 1] == "jp.mynagate.card-bridge"
    assert args[args.index("--install-location") + 1] == "/"
    package = f"mynagate-card-bridge-{card_bridge.__version__}.pkg"
    assert done.stdout.strip() == str(tmp_path / "out" / package)
    payload = record / "payload"
    program = payload / "Library/Application Support/Mynagate/card-bridge/mynagate-card-bridge"
    assert program.is_file()
    agent = plistlib.loads((payload / "Library/LaunchAgents/jp.mynagate.card-bridge.plist")
                           .read_bytes())
    assert agent["Label"] == "jp.mynagate.card-bridge" and agent["RunAtLoad"] is True
    assert agent["ProgramArguments"] == [
        "/Library/Application Support/Mynagate/card-bridge/mynagate-card-bridge",
        "serve", "--allow-origin", ORIGIN]
    assert os.access(record / "scripts" / "postinstall", os.X_OK)


@pytest.mark.parametrize("origin", ["", "http://id.example.ed.jp", f"{ORIGIN}/login",
                                    f"{ORIGIN}?x", f"{ORIGIN}#&", "id.example.ed.jp"])
def test_the_macos_package_needs_a_plain_https_origin(tmp_path, origin):
    done = _build_pkg(tmp_path, origin)
    assert done.returncode == 2 and "PROVIDER_ORIGIN" in done.stderr
    assert not (tmp_path / "record" / "args").exists()


def test_the_shell_scripts_parse():
    for script in (PACKAGING / "build-macos-pkg.sh", PACKAGING / "macos" / "postinstall"):
        assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0


def test_the_windows_installer_autostarts_the_bridge_with_the_origin():
    iss = (PACKAGING / "mynagate-card-bridge.iss").read_text(encoding="utf-8")
    run_key = 'Subkey: "Software\\Microsoft\\Windows\\CurrentVersion\\Run"'
    assert run_key in iss and "Root: HKA" in iss and "uninsdeletevalue" in iss
    assert '""{app}\\{#BridgeExe}"" serve --allow-origin {code:ProviderOrigin}' in iss
    # It installs what the PyInstaller recipe builds, under the name the recipe gives it.
    assert 'Source: "..\\..\\dist\\mynagate-card-bridge\\*"' in iss
    assert '#define BridgeExe "mynagate-card-bridge.exe"' in iss
    assert 'Name: "japanese"' in iss.split("[Languages]")[1].split("[")[0].splitlines()[1]


def test_the_pyinstaller_recipe_names_the_entry_script_and_the_executable():
    spec = (PACKAGING / "mynagate-card-bridge.spec").read_text(encoding="utf-8")
    ast.parse(spec)
    assert 'name="mynagate-card-bridge"' in spec and '"entry.py"' in spec
    entry = (PACKAGING / "entry.py").read_text(encoding="utf-8")
    assert "from card_bridge.cli import main" in entry
