"""The shape of the code, kept true by the AST (docs/architecture.md).

- No import cycle among the rooms of ``idp/``: every import counts, those inside functions
  too. Only imports under ``if TYPE_CHECKING:`` are left out, because they never run.
- Each room imports only the rooms below it. The protocol (``idp.oidc``) never imports the
  web rooms (admin pages, login pages, the student's page, the CLI), and nothing but the
  entry points (the CLI, the demo) imports ``idp.app``.
- ``card_bridge/`` imports nothing of ``idp``. It is installed on school PCs without the
  provider.
- No function is longer than 80 lines, and no file longer than 500, in ``idp/`` and
  ``card_bridge/``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("idp", "card_bridge")
MAX_FUNCTION_LINES = 80
MAX_FILE_LINES = 500

# The rooms of idp/, lowest first. A room imports rooms of its own layer or lower ones
# (never in a cycle). ``services`` holds the long-lived objects the rooms ask for at request
# time; it imports the rooms' types only under TYPE_CHECKING, so it sits at the bottom.
LAYERS: list[set[str]] = [
    {"settings", "store", "jpki", "pairwise", "outbound", "input_limits", "keys", "audit",
     "event_log", "extensions", "services", "scopes", "data", "metrics", "japan_time",
     "school_class", "qr", "fragments"},
    {"accounts", "clients", "signin"},
    {"oidc"},
    {"auth", "account", "admin", "ops"},
    {"app"},
    {"demo"},
    {"cli"},  # the `idp` command: starts the app, the demo, migrations, admin tasks
]
# The entry points that start the app.
MAY_IMPORT_APP = {"cli", "demo"}


def layer_of(room: str) -> int:
    for index, rooms in enumerate(LAYERS):
        if room in rooms:
            return index
    raise AssertionError(f"idp.{room} is in no layer: add it to LAYERS in {__file__}")


def python_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_tree(path: Path) -> ast.Module:
    """The module's AST without the bodies of ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = [ast.Pass()]
    return tree


def imported_modules(path: Path) -> Iterator[tuple[str, int]]:
    """Every module an import in ``path`` names (``from a import b`` names a and a.b)."""
    module = module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(runtime_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:
                yield f"{target}.{alias.name}", node.lineno


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "idp" and len(parts) > 1 else None


ROOMS = {p.stem for p in (ROOT / "idp").iterdir()
         if (p.suffix == ".py" and p.stem != "__init__")
         or (p.is_dir() and (p / "__init__.py").exists())}


def room_edges() -> dict[tuple[str, str], list[str]]:
    """(from room, to room) -> where, for every import between two rooms of idp/."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in (ROOT / "idp").rglob("*.py"):
        source = room_of(module_of(path))
        for target, line in imported_modules(path):
            room = room_of(target)
            if source and room and room != source and room in ROOMS:
                place = f"{path.relative_to(ROOT)}:{line}"
                if place not in edges[(source, room)]:
                    edges[(source, room)].append(place)
    return edges


def cycles(edges) -> list[list[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        graph[source].add(target)
    found, index, low, stack, on_stack = [], {}, {}, [], set()

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_rooms():
    edges = room_edges()
    found = cycles(edges)
    detail = [f"{a} -> {b}: {', '.join(where[:3])}" for (a, b), where in sorted(edges.items())
              if any(a in c and b in c for c in found)]
    assert not found, f"import cycles {found}:\n" + "\n".join(detail)


def test_no_room_imports_a_higher_one():
    wrong = []
    for (source, target), where in sorted(room_edges().items()):
        if target == "app" and source not in MAY_IMPORT_APP:
            wrong.append(f"{source} -> app (only {sorted(MAY_IMPORT_APP)} start the app): "
                         f"{where[0]}")
        elif target != "app" and layer_of(target) > layer_of(source):
            wrong.append(f"{source} -> {target}: {where[0]}")
    assert not wrong, "imports that go up:\n" + "\n".join(wrong)


def test_the_protocol_never_imports_the_web_rooms():
    web = {"admin", "auth", "account", "cli", "demo", "app"}
    wrong = [f"oidc -> {target}: {where[0]}" for (source, target), where in
             room_edges().items() if source == "oidc" and target in web]
    assert not wrong, "\n".join(wrong)


def test_card_bridge_imports_nothing_of_idp():
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {target}"
             for path in (ROOT / "card_bridge").rglob("*.py")
             for target, line in imported_modules(path) if target.split(".")[0] == "idp"]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", list(python_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_rooms_of_one_size(path: Path):
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_FILE_LINES, f"{lines} lines: split it by concern"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_checks_can_fail():
    """The analysis finds what it looks for: a made-up cycle is a cycle, and the layer
    table knows every room there is."""
    assert cycles({("a", "b"): [], ("b", "a"): []}) == [["a", "b"]]
    assert cycles({("a", "b"): [], ("b", "c"): []}) == []
    assert {"oidc", "jpki", "admin"} <= ROOMS
    for room in ROOMS:
        layer_of(room)
