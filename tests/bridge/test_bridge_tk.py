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


def xdotool(*args: str) -> subprocess.CompletedProcess[str]:
    # xdotool says "Can't open display: (null)" whenever its connection to the X server
    # fails (it names the argument it passed, not $DISPLAY). On a loaded CI machine Xvfb
    # now and then refuses one connection while Tk children come and go: that is the test
    # rig, not the bridge, so such a refusal is tried again; any other failure is not.
    for _ in range(5):
        done = subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=20)
        if "Can't open display" not in done.stderr:
            break
        time.sleep(0.2)
    return done


def xdo(*args: str) -> str:
    done = xdotool(*args)
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


def test_tk_window_names_the_app_before_the_origin(xdisplay: str) -> None:
    # The page's name for the app, then the host the bridge checked: in the heading and in
    # the title (which is what xdotool can read).
    from card_bridge.origins import Site

    result: dict[str, object] = {}
    t = threading.Thread(target=lambda: result.update(
        pin=TkPinPrompt(timeout=60).ask(Site("id.example.ed.jp", "算数ドリル"), 3, False)))
    t.start()
    wid = focus_window()
    assert xdo("getwindowname", wid).startswith("「算数ドリル」（id.example.ed.jp から） — ")
    xdo("type", "--delay", "50", "1234")
    xdo("key", "Return")
    t.join(30)
    assert result["pin"] == "1234"


def test_tk_window_without_an_app_names_the_host(xdisplay: str) -> None:
    t, result = run_prompt(3, False)
    wid = focus_window()
    assert xdo("getwindowname", wid).startswith("id.example.ed.jp — ")
    xdo("key", "Escape")
    t.join(30)
    assert result["pin"] is None


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


# ------------------------------------------------------------------ what happened, in a window
def windows_named(name: str) -> list[str]:
    done = xdotool("search", "--onlyvisible", "--name", name)
    assert "Can't open display" not in done.stderr, done.stderr  # else "gone" would be a lie
    return done.stdout.split()


def gone(name: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while windows_named(name):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_the_window_says_wrong_pin_then_signed_in(xdisplay: str, vcard) -> None:
    """Through the HTTP API as a sign-in page calls it: the person types a wrong PIN in the
    window, the bridge says so in a window of its own; the next PIN window replaces it, and
    the right PIN is answered with 「暗証番号OK」, a window that closes by itself."""
    from bridge_helpers import PIN, SimTransport
    from test_bridge_server import ORIGIN, auth

    from card_bridge.card import PcscStatus
    from card_bridge.events import EventLog
    from card_bridge.server import BridgeConfig, make_server

    config = BridgeConfig.build(
        [ORIGIN], pin_prompt=TkPinPrompt(timeout=60, notice_seconds=3),
        transport_factory=lambda: SimTransport(vcard),
        status_fn=lambda: PcscStatus("ok", ["Sim Reader"], ["Sim Reader"]),
        events=EventLog(stream=open(os.devnull, "w")),  # noqa: SIM115 - lives with it
    )  # fmt: skip
    srv = make_server(config, port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        answers: list[object] = []
        first = threading.Thread(target=lambda: answers.append(auth(srv)[2]))
        first.start()
        focus_window()
        xdo("type", "--delay", "50", "0000")
        xdo("key", "Return")
        first.join(30)
        assert answers[0]["error"] == "wrong_pin"  # type: ignore[index]
        wrong = xdo("search", "--sync", "--onlyvisible", "--name", "Wrong PIN: 2 tries left")
        assert wrong, "no window says the PIN was wrong"

        second = threading.Thread(target=lambda: answers.append(auth(srv)[2]))
        second.start()
        assert gone("Wrong PIN", within=2.5), "the next PIN window did not replace it"
        focus_window()
        xdo("type", "--delay", "50", PIN)
        xdo("key", "Return")
        second.join(30)
        assert answers[1]["format"].startswith("jpki-auth")  # type: ignore[index]
        assert xdo("search", "--sync", "--onlyvisible", "--name", "PIN accepted")
        assert gone("PIN accepted", within=8), "the success window did not close by itself"
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_outcome_window_closes_on_return(xdisplay: str) -> None:
    prompt = TkPinPrompt(notice_seconds=60)
    threading.Thread(target=lambda: prompt.tell(
        "暗証番号がちがいます。のこり 1 回", "Wrong PIN: 1 tries left", True)).start()
    wid = xdo("search", "--sync", "--onlyvisible", "--name", "Wrong PIN: 1 tries left")
    xdo("windowfocus", "--sync", wid.splitlines()[0])
    time.sleep(0.3)
    xdo("key", "Return")
    assert gone("Wrong PIN: 1 tries left", within=5)
