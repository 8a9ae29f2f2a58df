"""``python -m idp.demo`` (``make run``): serve the provider and the two demo apps."""

from __future__ import annotations

import sys
import threading
from typing import Any


def run(state_dir: str = "var", *, stop: threading.Event | None = None,
        **serve_options: Any) -> int:
    """Serve until Ctrl-C (or ``stop``, for tests). The terminal shows the banner and nothing
    after it: the servers' and the provider's log lines go to ``<state_dir>/demo.log``."""
    from idp.demo.serve import demo_logging, describe, remember_first_run, serve_demo
    from idp.settings import SettingsError

    stop = stop or threading.Event()
    with demo_logging(state_dir) as log_path:
        try:
            servers = serve_demo(state_dir=state_dir, **serve_options)
        except SettingsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"error: cannot serve on 127.0.0.1:5000-5002: {exc}", file=sys.stderr)
            return 1
        try:
            print(describe(servers, log_path=log_path), flush=True)
            remember_first_run(state_dir)
            while not stop.wait(3600):
                pass
        except KeyboardInterrupt:
            print("\nstopping…", flush=True)
        finally:
            servers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(run())
