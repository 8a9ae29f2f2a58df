"""``python -m idp.demo`` (``make run``): serve the provider and the two demo apps."""

from __future__ import annotations

import sys
import threading


def run(state_dir: str = "var") -> int:
    from idp.demo.serve import describe, serve_demo
    from idp.settings import SettingsError

    try:
        servers = serve_demo(state_dir=state_dir)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # (werkzeug itself explains a port already in use, and exits.)
        print(f"error: cannot serve on 127.0.0.1:5000-5002: {exc}", file=sys.stderr)
        return 1
    print(describe(servers), flush=True)
    stop = threading.Event()
    try:
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        servers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(run())
