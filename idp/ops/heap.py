"""A serving process and the garbage collector: what the app holds from its start is kept
out of the collector's way.

Python's full collection (generation 2) walks every object the process tracks. A started
provider holds ~165,000 of them (its modules, templates, SQLAlchemy's tables, the
translation catalogs), none of which ever becomes garbage. On the bench machine such a
collection took 0.2-0.3 s and came about once per thousand requests, holding the GIL: every
request in flight waited for it, which is what set the p99 at half load. ``gc.freeze()``
moves what exists at that moment to a permanent generation the collector skips: a full
collection then walks only what came later.

Frozen twice: once when the app is built (in the master before gunicorn forks, which also
spares the workers' copy-on-write pages), and once in each serving process after its first
minute, when the first requests have filled the caches (compiled templates and SQL, the
clients and accounts). Garbage alive at either moment is kept for good: a few requests'
worth, once.
"""

from __future__ import annotations

import gc
import threading

SETTLED_AFTER_SECONDS = 60.0


def freeze_what_is_held() -> int:
    """Collect, then freeze everything left; returns how many objects are frozen now."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def freeze_again_later(seconds: float = SETTLED_AFTER_SECONDS) -> threading.Timer:
    """Freeze once more after ``seconds`` of serving (a daemon timer of this process: start
    it after a fork, in the process that serves)."""
    timer = threading.Timer(seconds, freeze_what_is_held)
    timer.daemon = True
    timer.name = "mynagate-gc-freeze"
    timer.start()
    return timer
