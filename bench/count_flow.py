"""Instructions per SSO flow, counted by valgrind's callgrind: repeatable on a busy,
shared machine where the harness's timings are not (the same code, inputs and environment
give the same count whatever else runs). A developer's tool for A/B-ing a small change;
the harness (``bench/run.py``) stays the measure against oidc-provider.

Run: bench/count_flow.py [--backend postgres|sqlite] [--flows 40]
It runs this file twice under callgrind (a few flows, then ``--flows`` more) and prints
the main thread's difference per flow, so start-up and warm-up cancel out. Client (the Flask test
client) and server are one process here, as in ``bench/profile_flow.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WARM_FLOWS = 5


def run_flows(backend: str, flows: int) -> None:
    from bench.profile_flow import build, one_flow, seed
    from tests.conftest import Browser

    with tempfile.TemporaryDirectory() as tmp:
        app, stack = build(backend, tmp)
        with stack:
            rp, student = seed(app)
            browser = Browser(app.test_client())
            browser.sign_in_and_authorize(rp, student, scope="openid profile")
            for _ in range(WARM_FLOWS + flows):
                one_flow(browser.c, rp, None)


def count(backend: str, flows: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        env = {**os.environ, "PYTHONHASHSEED": "0",
               "PYTHONPATH": os.pathsep.join(filter(None, [
                   str(ROOT), os.environ.get("PYTHONPATH", "")]))}
        # Per thread: the flows run on the main thread (file -01); the app's background
        # threads (the event log's drainer, the bus listener) wake on timers, so their
        # counts grow with the wall time a run takes and would make the total drift.
        subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                        f"--callgrind-out-file={out}", sys.executable, __file__,
                        "--inner", str(flows), "--backend", backend], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        main_thread = Path(f"{out}-01")
        totals = re.search(r"^(?:totals|summary): (\d+)", main_thread.read_text(), re.M)
        assert totals, "callgrind wrote no totals"
        return int(totals.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--flows", type=int, default=40)
    parser.add_argument("--inner", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner is not None:
        run_flows(args.backend, args.inner)
        return
    few, many = count(args.backend, 0), count(args.backend, args.flows)
    print(f"{(many - few) / args.flows / 1e6:.2f} M instructions per SSO flow "
          f"({args.backend}, {args.flows} flows, callgrind)")


if __name__ == "__main__":
    main()
