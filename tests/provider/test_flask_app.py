"""idp.app.MynagateFlask: whether a view or hook is a coroutine function is asked once per
function, and what Flask does with either kind is unchanged."""

from __future__ import annotations

import flask.app
import pytest

from idp.app import MynagateFlask


def test_a_plain_function_is_looked_at_once_and_returned_as_it_is(monkeypatch):
    looked: list[object] = []
    real = flask.app.iscoroutinefunction

    def counting(func):
        looked.append(func)
        return real(func)

    monkeypatch.setattr(flask.app, "iscoroutinefunction", counting)
    app = MynagateFlask(__name__)

    def hook():
        return None

    assert [app.ensure_sync(hook) for _ in range(3)] == [hook] * 3
    assert looked == [hook]


def test_an_async_view_is_still_what_flask_makes_of_it():
    app, plain = MynagateFlask(__name__), flask.Flask(__name__)

    async def view():
        return "ok"

    try:
        expected = plain.ensure_sync(view)
    except RuntimeError as exc:  # Flask without its "async" extra refuses it
        with pytest.raises(RuntimeError, match=str(exc)[:30]):
            app.ensure_sync(view)
        with pytest.raises(RuntimeError):  # every time: a refusal is not kept
            app.ensure_sync(view)
        return
    assert app.ensure_sync(view) is not view and expected is not view


def test_the_app_answers_with_it(client):
    assert client.get("/healthz").status_code == 200
    assert isinstance(client.application, MynagateFlask)
