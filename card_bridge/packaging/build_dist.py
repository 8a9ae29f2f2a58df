"""Build the card bridge's wheel and single-file zipapp into one folder (`make dist`).

    python card_bridge/packaging/build_dist.py [--out dist]

Both are built from a copy of `card_bridge/` in a temporary folder, so the source tree gets
no build/ or *.egg-info folders. The zipapp holds only the bridge's own Python files:
pyscard is compiled code and cannot run from inside a zip, so it must be installed beside it
(`python -m pip install pyscard`, then `python mynagate-card-bridge-<version>.pyz --help`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipapp
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
# Not part of the program: the project files and the installers' recipes.
NOT_CODE = ("packaging", "pyproject.toml", "README.md", "__pycache__", "build", "*.egg-info")


def version() -> str:
    text = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if found is None:
        raise SystemExit("card_bridge/__init__.py has no __version__")
    return found.group(1)


def build_wheel(out: Path, work: Path) -> Path:
    project = work / "project"
    shutil.copytree(
        PACKAGE, project, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    )
    # cwd outside the project: its token.py would shadow the standard library's `token`.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(project), "-w", str(out)],
        check=True,
        cwd=work,
    )
    return out / f"mynagate_card_bridge-{version()}-py3-none-any.whl"


def build_zipapp(out: Path, work: Path) -> Path:
    tree = work / "zipapp"
    shutil.copytree(PACKAGE, tree / "card_bridge", ignore=shutil.ignore_patterns(*NOT_CODE))
    target = out / f"mynagate-card-bridge-{version()}.pyz"
    zipapp.create_archive(
        tree,
        target,
        interpreter="/usr/bin/env python3",
        main="card_bridge.cli:main",
        compressed=True,
    )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PACKAGE.parent / "dist")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="card-bridge-dist-") as tmp:
        wheel = build_wheel(args.out.resolve(), Path(tmp))
        pyz = build_zipapp(args.out.resolve(), Path(tmp))
    for built in (wheel, pyz):
        if not built.is_file():
            raise SystemExit(f"expected {built} after the build")
        print(built)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
