"""The JPKI rooms keep their shape (AST-based, every import counted, those in functions too):
idp/jpki stays pure, test scaffolding stays out of the sign-in path, card_bridge stays
independent, and no file or function there outgrows a reader."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Layer 1 of the agreed map: what idp/jpki may import from idp.
LAYER_1 = {"settings", "store", "jpki", "pairwise", "outbound", "input_limits", "keys", "audit",
           "extensions"}
#: Scaffolding users: the demo and the developer CLI commands (init-test-pki).
MAY_USE_TESTING = ("idp/jpki/testing/", "idp/demo/", "idp/cli", "idp/cli/card.py")


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):  # annotations only, never run
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_jpki_imports_nothing_above_layer_1():
    bad = {(str(p.relative_to(ROOT)), m) for p in sources("idp/jpki")
           for m in imported_modules(p)
           if m.startswith("idp.") and m.split(".")[1] not in LAYER_1}
    assert not bad


def test_card_bridge_imports_nothing_of_idp():
    bad = {(str(p.relative_to(ROOT)), m) for p in sources("card_bridge")
           for m in imported_modules(p) if m == "idp" or m.startswith("idp.")}
    assert not bad


def test_test_scaffolding_stays_out_of_the_sign_in_path():
    """Abuse: a test CA or key reachable from the running sign-in path could end up trusted
    in production; only the demo and developer commands may import idp.jpki.testing."""
    bad = {str(p.relative_to(ROOT)) for p in sources("idp")
           if any(m.startswith("idp.jpki.testing") for m in imported_modules(p))
           and not str(p.relative_to(ROOT)).startswith(MAY_USE_TESTING)}
    assert not bad


@pytest.mark.parametrize("folder", ["idp/jpki", "card_bridge"])
def test_no_file_over_500_lines_nor_function_over_80(folder):
    long_files, long_functions = [], []
    for path in sources(folder):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 500:
            long_files.append(str(path.relative_to(ROOT)))
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                    and node.end_lineno - node.lineno + 1 > 80):
                long_functions.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert (long_files, long_functions) == ([], [])


def test_revocation_has_one_module_per_source():
    names = {p.stem for p in (ROOT / "idp/jpki/revocation").glob("*.py")}
    assert {"crl", "ocsp", "platform", "combined"} <= names
    assert not (ROOT / "idp/jpki/revocation.py").exists()
