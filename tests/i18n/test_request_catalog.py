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
