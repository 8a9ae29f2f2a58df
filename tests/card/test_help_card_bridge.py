"""`/help/card-bridge`: the provider's own page on installing the card bridge, and every
page or message that tells a person how to install the bridge points there (issue 12) — not
at a repository path or a package that is not published."""

from __future__ import annotations

import ast
import re

import pytest
from babel.messages.pofile import read_po

from idp.auth.help_views import BRIDGE_PORT
from tests.conftest import ROOT

# How an install hint pointing elsewhere looks: a path in this repository, the provider's
# own package with a bridge extra, a source host, a bare package name nobody published.
ELSEWHERE = re.compile(
    r"docs/card-bridge|card_bridge/|mynagate\[bridge\]|pip install \"?mynagate\b(?!_card)"
    r"|pip install \"?mynagate-card-bridge|github\.com|gitlab\.",
)


def test_the_help_page_is_served_in_japanese_first_then_english(client, svc):
    page = client.get("/help/card-bridge")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'lang="ja"' in html
    assert "<h1>カードアプリの入れかた</h1>" in html
    # The commands name this provider's own origin and the bridge's own page.
    assert f"mynagate-card-bridge serve --allow-origin {svc.settings.issuer_origin}" in html
    assert f"http://127.0.0.1:{BRIDGE_PORT}/" in html
    for section in ("help-windows", "help-macos", "help-python", "help-check", "help-tablet",
                    "help-trouble"):
        assert f'id="{section}"' in html
    english = client.get("/help/card-bridge?lang=en").get_data(as_text=True)
    assert 'lang="en"' in english and "<h1>How to install the card app</h1>" in english
    assert "カードアプリのまどにだけ" not in english


def test_the_port_on_the_page_is_the_bridges():
    from card_bridge.server import DEFAULT_PORT

    assert BRIDGE_PORT == DEFAULT_PORT


def test_the_card_page_links_to_the_help_page(card_browser):
    html = card_browser.card_page().get_data(as_text=True)
    install_help = html[html.index('id="card-install-help"'):]
    install_help = install_help[:install_help.index("</div>")]
    assert 'href="/help/card-bridge"' in install_help and "pip install" not in install_help
    # The tablet's code goes into the bridge's own page, not a command line.
    pair_box = html[html.index('id="card-pair-box"'):]
    assert "http://127.0.0.1:47263/" in pair_box and "card-bridge pair" not in pair_box
    assert 'href="/help/card-bridge#help-tablet"' in pair_box


@pytest.mark.parametrize("template", sorted((ROOT / "idp" / "templates").rglob("*.html")),
                         ids=lambda p: str(p.relative_to(ROOT / "idp" / "templates")))
def test_no_template_points_elsewhere_to_install_the_bridge(template):
    text = template.read_text(encoding="utf-8")
    assert not ELSEWHERE.search(text), ELSEWHERE.search(text)
    assert "card-bridge pair " not in text  # the code is typed into the bridge's page


def test_no_translation_points_elsewhere_to_install_the_bridge():
    po = ROOT / "idp" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as handle:
        catalog = read_po(handle)
    for message in catalog:
        for text in (message.id, message.string):
            assert not (isinstance(text, str) and ELSEWHERE.search(text)), message.id


def _messages_of(path):
    """String constants of a module that are not docstrings: what it prints or answers."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
                  and node.body and isinstance(node.body[0], ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            yield node.value


@pytest.mark.parametrize("module", sorted(p for p in (ROOT / "card_bridge").rglob("*.py")
                                          if "packaging" not in p.parts),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_bridge_message_points_elsewhere(module):
    for text in _messages_of(module):
        assert not ELSEWHERE.search(text), (module.name, text)
