"""The accessibility check itself: it finds what it must, under a CSP like the provider's."""

from __future__ import annotations

import pytest

from tests.browser.a11y import assert_accessible, axe_violations

pytestmark = [pytest.mark.browser]
ORIGIN = "http://a11y.test"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "base-uri 'none'")
BAD = """<!doctype html><html><head><title>bad</title></head><body>
<main><h1>Bad page</h1>
<input type="text" name="nameless">
<button style="background:#777;color:#888">low contrast</button>
<button></button>
</main></body></html>"""
GOOD = """<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>よい</title></head>
<body><main><h1>よいページ</h1>
<label for="who">なまえ</label><input id="who" type="text" name="who">
<button style="background:#0b5cad;color:#fff">おくる</button>
</main></body></html>"""


@pytest.fixture
def page(chromium):
    context = chromium.new_context()
    page = context.new_page()

    def serve(route):
        body = GOOD if route.request.url.endswith("/good") else BAD
        route.fulfill(status=200, body=body, headers={
            "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": CSP})

    page.route(f"{ORIGIN}/**", serve)
    yield page
    context.close()


def test_serious_violations_fail_and_are_named_under_the_pages_csp(page, monkeypatch):
    monkeypatch.delenv("MYNAGATE_A11Y_SURVEY", raising=False)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text
            else None)
    page.goto(f"{ORIGIN}/bad")
    found = {v["id"] for v in axe_violations(page)}
    assert {"label", "button-name", "color-contrast", "html-has-lang"} <= found
    with pytest.raises(AssertionError) as failure:
        assert_accessible(page, "bad")
    text = str(failure.value)
    assert "button-name" in text and "color-contrast" in text and "[critical]" in text
    assert refused == []  # axe ran without a CSP refusal: the page's CSP stayed in force
    # An inline <script> the page adds is still refused: the CSP was not bypassed.
    page.evaluate("() => { const s = document.createElement('script'); "
                  "s.textContent = 'window.inlineRan = true'; document.body.append(s); }")
    assert page.evaluate("() => window.inlineRan === true") is False


def test_a_clean_page_passes(page):
    page.goto(f"{ORIGIN}/good")
    assert_accessible(page, "good")
