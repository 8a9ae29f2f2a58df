"""The suite leaves the machine's other PostgreSQL databases and Redis databases alone, and
docs/testing.md names exactly the ones it uses (read from the code, so a new one must be
documented)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THIS = Path(__file__).resolve()
DOC = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")


def code_files() -> list[Path]:
    files = []
    for folder in ("idp", "tests", "bench", "scripts", "card_bridge"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".sh") and "node_modules" not in path.parts \
                    and path.resolve() != THIS:
                files.append(path)
    return files


SOURCES = {path: path.read_text(encoding="utf-8") for path in code_files()}


def test_nothing_flushes_a_whole_redis_database():
    offenders = [str(p.relative_to(ROOT)) for p, text in SOURCES.items()
                 if re.search(r"flushdb|flushall", text, re.I)]
    assert offenders == []


def test_only_the_scratch_helper_drops_a_database():
    droppers = {str(p.relative_to(ROOT)) for p, text in SOURCES.items()
                if re.search(r"drop\s+database|dropdb\b", text, re.I)}
    assert droppers == {"idp/store/scratch.py"}


def test_every_throwaway_database_prefix_is_documented():
    prefixes = set()
    for text in SOURCES.values():
        prefixes |= set(re.findall(r'fresh_postgres_database\("(\w+)"\)', text))
        prefixes |= set(re.findall(r'scratch_database\([^,]+,\s*"(\w+)"\)', text))
    prefixes.add("mynagate_test_")  # fresh_postgres_database's default
    assert len(prefixes) >= 6
    for prefix in prefixes:
        assert f"`{prefix}<hex>`" in DOC, prefix


# These only parse a Redis URL (settings, the URL parser); they never connect to it.
PARSE_ONLY = {ROOT / "tests" / "provider" / "test_redis_urls.py",
              ROOT / "tests" / "demo" / "test_config_example.py"}


def test_the_redis_database_numbers_on_the_shared_server_are_the_documented_ones():
    shared = set()
    for path, text in SOURCES.items():
        if path in PARSE_ONLY:
            continue
        shared |= {int(n) for n in re.findall(r"redis://127\.0\.0\.1:6379/(\d+)", text)}
    faults = SOURCES[ROOT / "tests" / "provider" / "test_faults.py"]
    shared |= {int(n) for n in re.findall(r"redis://127\.0\.0\.1:\{redis_proxy\.port\}/(\d+)",
                                          faults)}
    assert shared == {12, 13, 14, 15}
    table = DOC.split("**Redis.**", 1)[1].split("\n\n", 2)[1]
    documented = {int(n) for n in re.findall(r"^\| (\d+) \|", table, re.M)}
    assert documented == shared
