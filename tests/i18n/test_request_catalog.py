"""Templates look the request's catalog up once (idp.app.install_request_translations),
not once per sentence, and still in the language the request asked for."""

from __future__ import annotations

import idp.app


def test_a_page_looks_its_catalog_up_once_in_the_language_asked(client, monkeypatch):
    calls = []
    real = idp.app.get_translations

    def counted():
        calls.append(1)
        return real()

    monkeypatch.setattr(idp.app, "get_translations", counted)
    japanese = client.get("/login")
    assert japanese.status_code == 200
    assert "サインイン" in japanese.get_data(as_text=True)
    assert len(calls) == 1
    calls.clear()
    english = client.get("/login?lang=en")
    assert "Sign in" in english.get_data(as_text=True)
    assert "サインインする" not in english.get_data(as_text=True)
    assert len(calls) == 1


def test_the_furigana_filter_gives_back_plain_ruby_and_nothing_else():
    """Sentences shown through ``|furigana`` can carry what a request or a hostile app's
    name put in them: only a ruby element with plain text inside becomes markup."""
    from idp.app import furigana, reading

    hostile = ('<script>alert(1)</script><ruby>字<rt>じ</rt></ruby>'
               '<ruby onclick="x()">a<rt>b</rt></ruby><ruby><b>x</b><rt>y</rt></ruby>')
    shown = str(furigana(hostile))
    assert "<ruby>字<rt>じ</rt></ruby>" in shown
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert "<ruby onclick" not in shown and "<b>" not in shown
    assert str(reading("<ruby>確認<rt>かくにん</rt></ruby>する")) == "かくにんする"
