"""The Tk PIN window, driven for real under Xvfb with xdotool."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_helpers import unavailable

from card_bridge.pin import TkPinPrompt, default_prompt

pytestmark = pytest.mark.pcsc  # needs the same desktop-ish CI image as the PC/SC tests


@pytest.fixture(scope="module")
def xdisplay() -> Iterator[str]:
    for tool in ("Xvfb", "xdotool"):
        if not shutil.which(tool):
            unavailable(f"{tool} is not installed (apt-get install xvfb xdotool)")
    try:
        import tkinter  # noqa: F401
    except ImportError:
        unavailable("tkinter is not available (apt-get install python3-tk)")
    # :99 unless a colleague's test already holds it
    num = next(n for n in range(99, 140) if not Path(f"/tmp/.X{n}-lock").exists())
    display = f":{num}"
    proc = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    env = {**os.environ, "DISPLAY": display}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ok = subprocess.run(["xdotool", "getmouselocation"], env=env, capture_output=True)
        if ok.returncode == 0:
            break
        time.sleep(0.1)
    else:
        proc.kill()
        unavailable("Xvfb did not start")
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    yield display
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
    proc.terminate()
    proc.wait(10)


def xdo(*args: str) -> str:
    done = subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def run_prompt(tries: int, last: bool) -> tuple[threading.Thread, dict[str, object]]:
    result: dict[str, object] = {}
    # Off the main thread TkPinPrompt runs the window in a child process, as in the server.
    t = threading.Thread(
        target=lambda: result.update(
            pin=TkPinPrompt(timeout=60).ask("id.example.ed.jp", tries, last)
        )
    )
    t.start()
    return t, result


def focus_window() -> str:
    wid = xdo("search", "--sync", "--onlyvisible", "--name", "Card bridge").splitlines()[0]
    xdo("windowfocus", "--sync", wid)
    time.sleep(0.3)  # let Tk's focus_force/after(50) settle
    return wid


def test_default_prompt_is_tk_with_display(xdisplay: str) -> None:
    assert isinstance(default_prompt(), TkPinPrompt)


def test_tk_window_returns_typed_pin(xdisplay: str) -> None:
    t, result = run_prompt(3, False)
    focus_window()
    xdo("type", "--delay", "50", "12a345")  # 'a' ignored, 5th digit refused
    xdo("key", "Return")
    t.join(30)
    assert result["pin"] == "1234"


def test_tk_last_try_needs_the_checkbox(xdisplay: str) -> None:
    t, result = run_prompt(1, True)
    focus_window()
    xdo("type", "--delay", "50", "4321")
    xdo("key", "Return")  # not confirmed yet: nothing happens
    time.sleep(0.5)
    assert t.is_alive()
    xdo("key", "Tab", "space")  # tick "I understand, try it"
    xdo("key", "Return")
    t.join(30)
    assert result["pin"] == "4321"


def test_tk_cancel(xdisplay: str) -> None:
    t, result = run_prompt(2, False)
    focus_window()
    xdo("type", "12")
    xdo("key", "Escape")
    t.join(30)
    assert result["pin"] is None


def test_tk_pairing_confirmation_comes_before_the_pin_and_no_stops(xdisplay: str) -> None:
    # Issue 8: with a display, `card-bridge pair` asks in a Yes/No window (focus on No)
    # before anything touches the card; answering No ends it with nothing sent.
    import sys

    from test_bridge_pair_cli import FakeProvider

    provider = FakeProvider()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "card_bridge.cli", "pair", "ABCD-1234",
             "--provider", provider.url, "--prompt", "tk"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "DISPLAY": xdisplay},
        )  # fmt: skip
        focus_window()
        assert proc.poll() is None  # waiting for the answer
        xdo("key", "space")  # presses the focused button: いいえ / No
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 1 and provider.posted == []
        assert "Sign-in was cancelled." in err  # refused by the person, not by a missing card
    finally:
        provider.httpd.shutdown()
        provider.httpd.server_close()
