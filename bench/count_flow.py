"""Instructions per SSO flow (or card sign-in, or refresh grant), counted by valgrind's callgrind: a
developer's lens that a busy machine does not move (the harness's rates moved 0.53x ->
0.88x with the code unchanged).

It runs the in-process flow of ``bench/profile_flow.py`` (authorize -> token -> UserInfo
through the Flask test client, on PostgreSQL + Redis) twice under callgrind, with 0 and with
``--flows`` flows after the same warm-up, and prints the difference per flow, of the main
thread only (the event log's drainer and the bus listener wake on timers, so their counts
grow with the wall time a run takes). Instructions in the cryptography and argon2
libraries are shown apart and left out of the figure to compare: RSA key generation at
start-up tries a random number of primes, and the signature itself is the same for every
provider. Two runs of the same code agree to about 1% here (with one string-hash seed for
both: see ``counted``).

``--flow card`` counts the card sign-in of ``bench/profile_card.py`` instead (authorize ->
card page -> verify -> token; the card's own signature, made by the
test, is in the cryptography figure); ``--flow refresh`` counts refresh grants with
rotation on one chain (``profile_flow.refresh_chain``, the harness's refresh workload).

Run: .venv/bin/python bench/count_flow.py [--flows 200] [--flow sso|card|refresh]  (~3 minutes)
Compare two commits: run it in each checkout (a ``git worktree``), minutes apart or not.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APART = ("_rust.abi3.so", "argon2")  # cryptography's and argon2-cffi's compiled code


def run_flows(flows: int, flow: str) -> None:
    """The inner run (under valgrind): warm up, then ``flows`` flows, then exit."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    if flow == "card":
        run_card_sign_ins(flows)
        return
    import profile_flow

    from tests.conftest import Browser

    with tempfile.TemporaryDirectory() as tmp:
        app, stack = profile_flow.build("postgres", tmp)
        with stack:
            rp, student = profile_flow.seed(app)
            client = app.test_client()
            if flow == "refresh":
                one = profile_flow.refresh_chain(client, rp, student)
            else:
                Browser(client).sign_in_and_authorize(rp, student, scope="openid profile")

                def one() -> None:
                    profile_flow.one_flow(client, rp, None)
            for _ in range(20):
                one()
            settle()
            for _ in range(flows):
                one()


def run_card_sign_ins(flows: int) -> None:
    import profile_card

    with tempfile.TemporaryDirectory() as tmp:
        app, stack, pki_dir = profile_card.build(Path(tmp))
        with stack:
            client_id, secret, card = profile_card.seed(app, pki_dir)
            for _ in range(20):
                profile_card.one_flow(app, client_id, secret, card)
            settle()
            for _ in range(flows):
                profile_card.one_flow(app, client_id, secret, card)


def settle() -> None:
    """After the warm-up, as a serving process does after its first minute
    (idp.ops.heap): the rest of the run's full collections are then small. Without it one
    collection of the whole heap, falling inside the counted flows or not with how a change
    allocates, moved the figure by more than any change being weighed."""
    from idp.ops.heap import freeze_what_is_held

    freeze_what_is_held()


def main_thread_counts(out_file: Path) -> tuple[int, int]:
    """(all instructions, those in APART) of the main thread's callgrind file."""
    annotated = subprocess.run(["callgrind_annotate", "--threshold=100", f"{out_file}-01"],
                               capture_output=True, text=True, check=True).stdout
    total = apart = 0
    for line in annotated.splitlines():
        first = line.split(maxsplit=1)[0] if line.strip() else ""
        if not first.replace(",", "").isdigit():
            continue
        count = int(first.replace(",", ""))
        if "PROGRAM TOTALS" in line:
            total = count
        elif any(name in line for name in APART):
            apart += count
    return total, apart


def counted(flows: int, workdir: Path, flow: str) -> tuple[int, int]:
    out_file = workdir / f"callgrind.{flows}.out"
    subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                    f"--callgrind-out-file={out_file}", sys.executable, __file__,
                    "--inner", str(flows), "--flow", flow], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   # One string hashing for both runs: with a random seed each, sets and
                   # dicts probe differently and two runs of one commit differed by 3-5%.
                   env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"})
    return main_thread_counts(out_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--flow", choices=("sso", "card", "refresh"), default="sso")
    parser.add_argument("--inner", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner is not None:
        run_flows(args.inner, args.flow)
        return
    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        sys.exit("count_flow: valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="count-flow-") as tmp:
        base_total, base_apart = counted(0, Path(tmp), args.flow)
        total, apart = counted(args.flows, Path(tmp), args.flow)
    per_flow = (total - base_total) / args.flows / 1e6
    crypto = (apart - base_apart) / args.flows / 1e6
    what = {"sso": "SSO flow", "card": "card sign-in", "refresh": "refresh grant"}[args.flow]
    print(f"per {what}, main thread (client + server): {per_flow - crypto:.2f} M "
          f"instructions, besides {crypto:.2f} M in cryptography/argon2")


if __name__ == "__main__":
    main()
