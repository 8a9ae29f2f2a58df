"""Accessibility check for the browser journeys: axe-core (npm ``axe-core``, installed by
scripts/test-deps.sh into tests/browser/node_modules) run inside the page Playwright shows.

``assert_accessible(page, "step")`` fails on any violation of impact *serious* or *critical*
and prints each one (rule, impact, help, the offending elements), so a journey that calls it
on every page it visits keeps every page of that journey free of them.

Why ``page.evaluate`` and not ``add_script_tag``: the provider's CSP allows only its own
script files (``script-src 'self'``), so a ``<script>`` element carrying axe's source would be
refused — ``add_script_tag`` makes exactly such an element. Code Playwright evaluates through
the DevTools protocol is not subject to the page's CSP, so the journeys keep the real CSP in
force (``bypass_csp`` would hide a CSP regression in the very pages they walk) and axe still
runs. axe-core itself needs no ``eval``.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from tests.conftest import need

AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")
# WCAG 2.1 A and AA (and axe's best practices, which is where landmarks and the page's
# one <h1> live); the AAA rules (e.g. 7:1 contrast) are not the bar.
RUN_OPTIONS: dict[str, Any] = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                          "best-practice"]},
    "resultTypes": ["violations"],
}


@cache
def axe_source() -> str:
    need(AXE_JS.exists(), f"{AXE_JS} is missing: run scripts/test-deps.sh "
                          "(npm ci in tests/browser)")
    return AXE_JS.read_text(encoding="utf-8")


def _load_axe(page: Any) -> None:
    if page.evaluate("() => typeof window.axe === 'object'"):
        return
    # Wrapped in a function so the evaluated text is an expression Playwright calls; axe's
    # UMD wrapper then sets window.axe.
    page.evaluate("() => {\n" + axe_source() + "\n}")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        raise AssertionError("axe-core did not load into the page")


def axe_violations(page: Any) -> list[dict]:
    """All axe violations on the page as it is now (every impact)."""
    _load_axe(page)
    result = page.evaluate("options => window.axe.run(document, options)", RUN_OPTIONS)
    return result["violations"]


def serious(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v.get("impact") in FAILING_IMPACTS]


def describe_violations(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"- [{violation['impact']}] {violation['id']}: {violation['help']} "
                     f"({violation['helpUrl']})")
        for node in violation["nodes"][:8]:
            lines.append(f"    {json.dumps(node['target'], ensure_ascii=False)} "
                         f"{node['html'][:160]}")
            summary = (node.get("failureSummary") or "").strip().replace("\n", " ")
            if summary:
                lines.append(f"      {summary[:300]}")
    return "\n".join(lines)


def _survey_only() -> bool:
    """``MYNAGATE_A11Y_SURVEY=1`` (never under CI) prints the violations and walks on, to
    see every page's at once while fixing them; the check fails otherwise."""
    return os.environ.get("MYNAGATE_A11Y_SURVEY") == "1" and os.environ.get("CI") != "true"


def assert_accessible(page: Any, step: str = "") -> None:
    """Fail when the page has a serious or critical axe violation; print them all."""
    found = serious(axe_violations(page))
    if found:
        report = describe_violations(found)
        print(f"axe: {page.url} ({step}):\n{report}")
        if not _survey_only():
            raise AssertionError(f"accessibility violations on {page.url} ({step}):\n"
                                 f"{report}")
