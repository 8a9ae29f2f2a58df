"""The demo apps' buttons and text meet WCAG 2.1 AA contrast (1.4.3: 4.5:1 for text), computed
from the colours in the demo page's own CSS."""

from __future__ import annotations

import re

import pytest

from idp.demo.rp import PAGE

AA_TEXT = 4.5
WHITE = "#fff"


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: str) -> float:
    """WCAG 2.1's relative luminance of a #rgb / #rrggbb colour."""
    hex_digits = colour.lstrip("#")
    if len(hex_digits) == 3:
        hex_digits = "".join(d * 2 for d in hex_digits)
    r, g, b = (int(hex_digits[i:i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast_ratio(a: str, b: str) -> float:
    light, dark = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def css_rules(page: str) -> dict[str, dict[str, str]]:
    """``selector -> {property: value}`` of the page's <style> block."""
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    rules: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", style):
        declarations = dict(
            (name.strip(), value.strip()) for name, value in
            (d.split(":", 1) for d in body.split(";") if ":" in d))
        for selector in selectors.split(","):
            rules.setdefault(" ".join(selector.split()), {}).update(declarations)
    return rules


RULES = css_rules(PAGE)


def colour(selector: str, prop: str) -> str:
    """The value the most specific of the rules that apply gives (``.button .en`` falls back
    to ``.en``: what the browser would show without its own rule)."""
    for candidate in (selector, selector.split()[-1]):
        if prop in RULES.get(candidate, {}):
            return RULES[candidate][prop]
    raise KeyError(f"{selector} {{{prop}}}")


def test_the_contrast_formula_matches_wcag_reference_values():
    assert contrast_ratio("#000", "#fff") == pytest.approx(21.0)
    assert contrast_ratio("#777", "#fff") == pytest.approx(4.48, abs=0.01)  # just fails AA
    assert contrast_ratio("#666", "#0b5cad") < AA_TEXT  # the demo's old button subtitle


@pytest.mark.parametrize(("what", "text", "background"), [
    ("button label", colour(".button", "color"), colour(".button", "background")),
    ("English line inside a button", colour(".button .en", "color"),
     colour(".button", "background")),
    ("secondary button label", colour(".button", "color"),
     colour(".button.secondary", "background")),
    ("English line inside a secondary button", colour(".button .en", "color"),
     colour(".button.secondary", "background")),
    ("body text", colour("body", "color"), WHITE),
    ("English lines", colour(".en", "color"), WHITE),
    ("the sub box", colour("body", "color"), colour(".sub", "background")),
    ("English lines in the sub box", colour(".en", "color"), colour(".sub", "background")),
    ("error text", colour(".error", "color"), WHITE),
])
def test_demo_app_text_meets_wcag_aa(what, text, background):
    assert contrast_ratio(text, background) >= AA_TEXT, (what, text, background)


def test_every_button_background_in_the_css_is_checked():
    backgrounds = {s for s, d in RULES.items() if s.startswith(".button") and "background" in d}
    assert backgrounds == {".button", ".button.secondary"}
