"""The card page as a child meets it: a card not linked yet is a calm notice that stays (not a
red error that moves on by itself), a wrong PIN says what to do next, tabs are not buttons,
a drawing of the card on the reader, furigana in Japanese only."""

from __future__ import annotations

import re

from tests.conftest import ROOT

STATIC = ROOT / "idp" / "static"


def test_the_page_has_the_notice_the_drawing_and_furigana(card_browser):
    html = card_browser.c.get("/login/card?lang=ja").get_data(as_text=True)
    notice = html.split('id="card-notice"', 1)[1].split("</div>", 1)[0]
    assert 'class="notice"' in html.split('id="card-notice"', 1)[0][-40:] + 'class="notice"'
    assert 'id="card-notice-continue" class="primary"' in notice and "hidden" in html.split(
        'id="card-notice"', 1)[1][:40]
    assert re.search(r'<img src="/static/card-reader\.svg"[^>]* alt="[^"]+"', html)
    assert "<ruby>暗証番号<rt>あんしょうばんごう</rt></ruby>" in html
    # The not-linked sentence is friendly and waits for the button.
    assert "はじめてのときは、これでだいじょうぶ" in html
    english = card_browser.c.get("/login/card?lang=en").get_data(as_text=True)
    assert "<ruby>" not in english and "That is normal the first time" in english


def test_the_drawing_is_a_plain_svg_file(card_browser):
    response = card_browser.c.get("/static/card-reader.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    svg = response.get_data(as_text=True)
    assert "<script" not in svg and "on" + "load" not in svg and "<title" in svg


def test_not_linked_no_longer_flashes_and_moves_on():
    """The old page showed a red error for 1.5 s and then went away by itself."""
    script = (STATIC / "card.js").read_text("utf-8")
    assert "setTimeout(function () { window.location.assign" not in script
    assert script.count("showNotice(code, messages.msgCardNotLinked") == 2  # tap and tablet
    assert "innerHTML" not in script  # furigana is built as DOM nodes
    # The admin's linking page uses the same script without a notice: the error box there.
    assert "if (!notice) { fail(code, text); return; }" in script


def test_a_wrong_pin_says_what_to_do_next(card_browser):
    html = card_browser.c.get("/login/card?lang=ja").get_data(as_text=True)
    wrong = re.search(r'data-msg-wrong-pin="([^"]*)"', html).group(1)
    assert "{tries}" in wrong and "もう一度「はじめる」をおして" in wrong


def test_a_tab_never_looks_like_the_main_button():
    css = (STATIC / "style.css").read_text("utf-8")
    active = re.search(r"\.tab\.active\s*\{([^}]*)\}", css).group(1)
    primary = re.search(r"\.primary, button\.primary, input\.primary\s*\{([^}]*)\}", css).group(1)
    assert "background:var(--accent)" in primary
    assert "background" not in active and "border-radius" not in re.search(
        r"\.tab\s*\{([^}]*)\}", css).group(1)


def test_the_card_pages_kept_sentences_follow_each_requests_language(crl_app):
    """The card page's messages and steps are rendered once per language and kept
    (idp.fragments): each request still gets its own language's, whichever came first,
    and the page's own per-request parts (the CSRF token) are never among the kept."""
    import re

    app, client = crl_app, crl_app.test_client()
    kept = app.extensions.setdefault("mynagate.fragments", {})
    kept.clear()
    reloads = app.jinja_env.auto_reload
    app.jinja_env.auto_reload = False  # the cache is off while templates reload
    pages = [client.get(f"/login/card?lang={lang}").get_data(as_text=True)
             for lang in ("en", "ja", "en", "ja")]
    looking = [re.search(r'data-msg-looking="([^"]*)"', page).group(1) for page in pages]
    assert looking == ["Looking for the card app…", "カードアプリをさがしています…"] * 2
    assert "Check the card" in pages[2] and "Check the card" not in pages[3]
    assert {key for key, _lang, _root in kept} == {
        "card-messages", "card-steps", "card-login-messages", "card-login-start",
        "card-login-error-box", "card-login-pair-and-help"}
    tokens = [re.search(r'data-csrf="([^"]*)"', page).group(1) for page in pages]
    challenges = [re.search(r'data-challenge="([^"]*)"', page).group(1) for page in pages]
    for fragment in kept.values():
        assert not any(token in fragment for token in tokens + challenges)
        assert "txn=" not in fragment  # nothing of a sign-in's transaction
    # Kept, it is the same text as rendered afresh.
    app.jinja_env.auto_reload = True  # rendered afresh each time
    try:
        again = client.get("/login/card?lang=en").get_data(as_text=True)
    finally:
        app.jinja_env.auto_reload = reloads
    strip = re.compile(r'data-(csrf|challenge|challenge-expires-in)="[^"]*"')  # its own
    assert strip.sub("", again) == strip.sub("", pages[0])


def test_the_card_pages_kept_parts_follow_the_mount_point(crl_app):
    """A kept fragment's links to the provider's own pages (the drawing, the help page)
    are right for each mount point the provider is reached under (behind a proxy at /idp,
    and directly), whichever came first: fragments are kept per script root too."""
    app, client = crl_app, crl_app.test_client()
    app.extensions.setdefault("mynagate.fragments", {}).clear()
    reloads = app.jinja_env.auto_reload
    app.jinja_env.auto_reload = False
    try:
        mounted = client.get("/login/card", base_url="http://localhost/idp/")
        direct = client.get("/login/card")
    finally:
        app.jinja_env.auto_reload = reloads
    assert mounted.status_code == direct.status_code == 200
    drawing = re.compile(r'<img src="([^"]*card-reader\.svg)"')
    assert drawing.search(mounted.get_data(as_text=True)).group(1) == "/idp/static/card-reader.svg"
    assert drawing.search(direct.get_data(as_text=True)).group(1) == "/static/card-reader.svg"
    help_link = re.compile(r'<a href="([^"]*)#help-tablet"')
    assert help_link.search(mounted.get_data(as_text=True)).group(1).startswith("/idp/")
    assert not help_link.search(direct.get_data(as_text=True)).group(1).startswith("/idp/")
