"""Asking the person for their PIN — locally, never over HTTP.

The PIN only ever comes from a window or terminal on this computer (or, in tests, from a
Python object injected in-process). A web page can ask the bridge to sign in, but cannot
supply or read the PIN, so a malicious page cannot spend the card's three tries.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from card_bridge.apdu import is_valid_pin
from card_bridge.origins import Site

if TYPE_CHECKING:  # tkinter is imported only when a window is shown
    import tkinter


@runtime_checkable
class PinPrompt(Protocol):
    def ask(self, site: Site | str, tries_left: int, last_try: bool) -> str | None:
        """Return the PIN, or None when the person cancelled.

        `site` is whom it is for (card_bridge.origins.Site: the app's name, if the page
        gave one, and always the origin the bridge checked); a plain string is a host.

        On the last try an implementation must return a PIN only after the person
        explicitly confirmed they want to spend it.
        """
        ...


# ----------------------------------------------------------------------------------------
# Test doubles (reachable from Python only)
# ----------------------------------------------------------------------------------------
class ScriptedPinPrompt:
    """Answers from a list, in order (None = cancel); records every question asked."""

    def __init__(self, answers: Iterable[str | None] = ()) -> None:
        self.answers: list[str | None] = list(answers)
        self.asked: list[tuple[Site, int, bool]] = []

    def ask(self, site: Site | str, tries_left: int, last_try: bool) -> str | None:
        self.asked.append((Site.of(site), tries_left, last_try))
        if not self.answers:
            return None
        return self.answers.pop(0)


class QueuePinPrompt:
    """Blocks until a test thread puts an answer (or None) on `answers`."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.questions: queue.Queue[tuple[Site, int, bool]] = queue.Queue()
        self.answers: queue.Queue[str | None] = queue.Queue()
        self.timeout = timeout

    def ask(self, site: Site | str, tries_left: int, last_try: bool) -> str | None:
        self.questions.put((Site.of(site), tries_left, last_try))
        try:
            return self.answers.get(timeout=self.timeout)
        except queue.Empty:
            return None


# ----------------------------------------------------------------------------------------
# Terminal
# ----------------------------------------------------------------------------------------
class TerminalPinPrompt:
    def __init__(self, stream: object = None) -> None:
        self.stream = stream or sys.stderr

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)  # type: ignore[call-overload]

    def ask(self, site: Site | str, tries_left: int, last_try: bool) -> str | None:
        import getpass

        site = Site.of(site)
        heading = site.ja_then("がサインインを求めています")
        self._say(f"\n{heading} / {site.en} wants you to sign in")
        self._say(f"のこり {tries_left} 回 / {tries_left} tries left")
        try:
            if last_try:
                self._say(
                    "これが最後の1回です。まちがえるとカードがロックされます。\n"
                    "This is your LAST try. If it is wrong, the card locks."
                )
                answer = input("続けるには yes と入力 / Type yes to continue: ")
                if answer.strip().lower() not in ("yes", "はい"):
                    return None
            for _ in range(3):  # only format mistakes are re-asked: they cost no try
                pin = getpass.getpass("暗証番号（数字4けた） / PIN (4 numbers): ")
                if not pin:
                    return None
                if is_valid_pin(pin):
                    return pin
                self._say("数字4けたで入れてね / Please type 4 numbers")
        except (EOFError, KeyboardInterrupt):
            return None
        return None


# ----------------------------------------------------------------------------------------
# Tk window
# ----------------------------------------------------------------------------------------
def _tk_pin_entry(
    root: tkinter.Tk, frame: tkinter.Frame, site: Site, tries_left: int
) -> tuple[tkinter.StringVar, tkinter.Entry]:
    """The heading, the 4-digit PIN field and the tries left; returns (pin_var, entry)."""
    import tkinter as tk

    tk.Label(
        frame,
        text=f"{site.ja_then('がサインインを求めています')}\n{site.en} wants you to sign in",
        font=("TkDefaultFont", 12, "bold"),
        justify="center",
        wraplength=420,  # an app's name may be 64 characters long
    ).pack(pady=(0, 8))
    tk.Label(
        frame,
        text="マイナンバーカードの利用者証明用暗証番号（数字4けた）\n"
        "Your My Number card PIN (4 numbers)",
        justify="center",
    ).pack()

    def valid(proposed: str) -> bool:
        # Typing is limited to at most 4 ASCII digits; anything else is ignored.
        return len(proposed) <= 4 and all("0" <= c <= "9" for c in proposed)

    pin_var = tk.StringVar()
    entry = tk.Entry(
        frame,
        textvariable=pin_var,
        show="●",
        width=8,
        justify="center",
        font=("TkFixedFont", 18),
        validate="key",
        validatecommand=(root.register(valid), "%P"),
    )
    entry.pack(pady=8)
    tk.Label(frame, text=f"のこり {tries_left} 回 / {tries_left} tries left").pack()
    return pin_var, entry


def _tk_last_try_warning(
    frame: tkinter.Frame, confirm_var: tkinter.BooleanVar
) -> tkinter.Checkbutton:
    """The last-try warning and the tick box that must be ticked before OK works."""
    import tkinter as tk

    tk.Label(
        frame,
        fg="#b00020",
        justify="center",
        text="これが最後の1回です。まちがえるとカードがロックされ、\n"
        "市役所・区役所での再設定が必要になります。\n"
        "This is your LAST try. If it is wrong, the card locks\n"
        "and must be reset at your city office.",
    ).pack(pady=(6, 2))
    check = tk.Checkbutton(
        frame, variable=confirm_var, text="わかりました。ためします / I understand, try it"
    )
    check.pack()
    return check


def run_tk_dialog(site: Site, tries_left: int, last_try: bool) -> str | None:
    """Show the PIN window and block until OK/Cancel. Must run on the thread owning Tk."""
    import tkinter as tk

    result: dict[str, str | None] = {"pin": None}
    root = tk.Tk()
    # Whom it is for in the title too: the taskbar says it (and a test's xdotool reads it).
    root.title(f"{site.ja} — Mynagate カードブリッジ / Card bridge")
    root.resizable(False, False)
    root.attributes("-topmost", True)  # the browser must not hide the window asking

    frame = tk.Frame(root, padx=18, pady=14)
    frame.pack()
    pin_var, entry = _tk_pin_entry(root, frame, site, tries_left)
    confirm_var = tk.BooleanVar(value=not last_try)
    check = _tk_last_try_warning(frame, confirm_var) if last_try else None

    buttons = tk.Frame(frame)
    buttons.pack(pady=(10, 0))

    def ok(_event: object = None) -> None:
        if is_valid_pin(pin_var.get()) and confirm_var.get():
            result["pin"] = pin_var.get()
            root.destroy()

    def cancel(_event: object = None) -> None:
        result["pin"] = None
        root.destroy()

    ok_button = tk.Button(buttons, text="OK", width=10, command=ok)
    ok_button.pack(side="left", padx=6)
    tk.Button(buttons, text="やめる / Cancel", command=cancel).pack(side="left", padx=6)

    def refresh(*_: object) -> None:
        ready = is_valid_pin(pin_var.get()) and confirm_var.get()
        ok_button.configure(state="normal" if ready else "disabled")

    pin_var.trace_add("write", refresh)
    confirm_var.trace_add("write", refresh)
    refresh()
    root.bind("<Return>", ok)
    if check is not None:
        # Tk's X11 Checkbutton class toggles on Return; here Return means OK (space ticks).
        check.bind("<Return>", lambda e: (ok(e), "break")[1])
    root.bind("<KP_Enter>", ok)
    root.bind("<Escape>", cancel)
    root.protocol("WM_DELETE_WINDOW", cancel)
    root.after(50, lambda: (root.lift(), root.focus_force(), entry.focus_set()))
    root.mainloop()
    return result["pin"]


def run_tk_confirm(text: str) -> bool:
    """A Yes/No window with the pairing facts; only Yes (clicked or Return) continues."""
    import tkinter as tk

    result = {"yes": False}
    root = tk.Tk()
    root.title("Mynagate カードブリッジ / Card bridge")
    root.resizable(False, False)
    root.attributes("-topmost", True)
    frame = tk.Frame(root, padx=18, pady=14)
    frame.pack()
    tk.Label(frame, text=text, justify="left", font=("TkDefaultFont", 11)).pack(pady=(0, 10))
    buttons = tk.Frame(frame)
    buttons.pack()

    def answer(yes: bool) -> None:
        result["yes"] = yes
        root.destroy()

    tk.Button(buttons, text="はい / Yes", width=10, command=lambda: answer(True)).pack(
        side="left", padx=6
    )
    no = tk.Button(buttons, text="いいえ / No", width=10, command=lambda: answer(False))
    no.pack(side="left", padx=6)
    root.bind("<Escape>", lambda _e: answer(False))
    root.protocol("WM_DELETE_WINDOW", lambda: answer(False))
    root.after(50, lambda: (root.lift(), root.focus_force(), no.focus_set()))
    root.mainloop()
    return result["yes"]


NOTICE_SECONDS = 8.0  # long enough to read two lines, short enough not to pile up


def run_tk_notice(ja: str, en: str, bad: bool, seconds: float = NOTICE_SECONDS) -> None:
    """The outcome of a sign-in in a small window: Japanese first, then English.

    It closes itself after `seconds` (nobody has to dismiss a success), or at once on
    OK, Return or Escape. The words are also its title, so the taskbar (and a test's
    xdotool) names what happened.
    """
    import tkinter as tk

    root = tk.Tk()
    root.title(f"{ja} / {en} — Mynagate カードブリッジ / Card bridge")
    root.resizable(False, False)
    root.attributes("-topmost", True)  # said where the PIN was just typed, above the browser
    frame = tk.Frame(root, padx=18, pady=14)
    frame.pack()
    colour = "#b00020" if bad else "#1b5e20"
    tk.Label(frame, text=ja, fg=colour, font=("TkDefaultFont", 13, "bold"),
             justify="center", wraplength=420).pack(pady=(0, 4))
    tk.Label(frame, text=en, justify="center", wraplength=420).pack(pady=(0, 10))
    ok = tk.Button(frame, text="OK", width=10, command=root.destroy)
    ok.pack()
    root.bind("<Return>", lambda _e: root.destroy())
    root.bind("<KP_Enter>", lambda _e: root.destroy())
    root.bind("<Escape>", lambda _e: root.destroy())
    root.after(int(seconds * 1000), root.destroy)
    root.after(50, lambda: (root.lift(), ok.focus_set()))
    root.mainloop()


class TkPinPrompt:
    """Small Tk window.

    Tk wants to live on one thread (on macOS: the main thread), while the HTTP server asks
    from worker threads, so off the main thread the window runs in a child process
    (`python -m card_bridge.pin`) that hands the PIN back over a pipe. The outcome
    (:meth:`tell`) is a window of its own that the next PIN window replaces.
    """

    def __init__(
        self,
        in_process: bool | None = None,
        timeout: float = 300.0,
        notice_seconds: float = NOTICE_SECONDS,
    ) -> None:
        self.in_process = in_process
        self.timeout = timeout
        self.notice_seconds = notice_seconds
        self._notice: subprocess.Popen[str] | None = None
        self._notice_lock = threading.Lock()

    def _here(self) -> bool:
        if self.in_process is not None:
            return self.in_process
        return threading.current_thread() is threading.main_thread()

    def tell(self, ja: str, en: str, bad: bool) -> None:
        """Show what happened (PIN accepted and signed in, wrong PIN and the tries left).

        Off the main thread it does not wait for the window: the page's answer must not
        wait for a child to read it.
        """
        if self._here():
            run_tk_notice(ja, en, bad, self.notice_seconds)
            return
        request = json.dumps(
            {"notice": {"ja": ja, "en": en, "bad": bad, "seconds": self.notice_seconds}}
        )
        command, env = child_command()
        with self._notice_lock:
            self._close_notice()
            try:
                child = subprocess.Popen(
                    command, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, text=True,
                )  # fmt: skip
                assert child.stdin is not None
                child.stdin.write(request)
                child.stdin.close()
            except OSError:
                return  # the terminal and the local page still say it
            self._notice = child
        # Reap it when it closes (no zombie per sign-in on a PC that runs for weeks).
        threading.Thread(target=child.wait, daemon=True).start()

    def _close_notice(self) -> None:
        # The next PIN window replaces the last outcome: two windows would ask for focus.
        if self._notice is not None and self._notice.poll() is None:
            self._notice.terminate()
        self._notice = None

    def ask(self, site: Site | str, tries_left: int, last_try: bool) -> str | None:
        site = Site.of(site)
        with self._notice_lock:
            self._close_notice()
        if self._here():
            return run_tk_dialog(site, tries_left, last_try)
        request = json.dumps({"site": site.where, "app": site.app, "tries_left": tries_left,
                              "last_try": last_try})
        command, env = child_command()
        try:
            done = subprocess.run(
                command,
                env=env,
                input=request,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0:
            return None
        try:
            pin = json.loads(done.stdout or "null")
        except ValueError:
            return None
        return pin if is_valid_pin(pin) else None


PIN_WINDOW_FLAG = "--pin-window"


def child_command() -> tuple[list[str], dict[str, str]]:
    """How to start the PIN window's child process, however the bridge was installed.

    A PyInstaller build has no `python -m`: its executable runs the window when given
    PIN_WINDOW_FLAG (card_bridge.cli.main). From a zipapp (or a source tree) the child
    Python must be told where `card_bridge` is: the .pyz file, or the folder holding it.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, PIN_WINDOW_FLAG], dict(os.environ)
    import card_bridge

    home = os.path.dirname(os.path.dirname(os.path.abspath(card_bridge.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
    return [sys.executable, "-m", "card_bridge.pin"], env


def tk_available() -> bool:
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return False
    try:
        import tkinter  # noqa: F401
    except ImportError:
        return False
    return True


def default_prompt() -> PinPrompt:
    """Tk when there is a display and tkinter imports, else the terminal."""
    return TkPinPrompt() if tk_available() else TerminalPinPrompt()


def child_main() -> int:
    # Child side of TkPinPrompt: request JSON on stdin, PIN (or null) JSON on stdout;
    # or an outcome to show ({"notice": ...}), which answers nothing.
    req = json.loads(sys.stdin.read())
    if "notice" in req:
        notice = req["notice"]
        run_tk_notice(str(notice["ja"]), str(notice["en"]), bool(notice["bad"]),
                      float(notice["seconds"]))
        return 0
    # The name was cleaned before it came here; a request without one names the host only.
    site = Site(str(req["site"]), str(req.get("app") or ""))
    pin = run_tk_dialog(site, int(req["tries_left"]), bool(req["last_try"]))
    sys.stdout.write(json.dumps(pin))
    return 0


if __name__ == "__main__":
    raise SystemExit(child_main())
