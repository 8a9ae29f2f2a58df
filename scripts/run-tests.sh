#!/usr/bin/env bash
# The suite twice: embedded backend (SQLite + in-process store), then PostgreSQL + Redis.
# Tests that don't touch the provider's storage (card bridge, JPKI core, browser) run once, in
# the first. Only in the second: the bench harness's smoke test (marked postgres: it measures
# on PostgreSQL + Redis; the first pass deselects it), the deployment tests (tests/deploy:
# PostgreSQL + Redis by design) and tests/multi_instance (their own PostgreSQL and Redis).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
mkdir -p test-artifacts
status=0
echo "== SQLite + in-process store: whole suite"
MYNAGATE_TEST_BACKEND=sqlite $BIN/pytest -q -p no:cacheprovider -m "not deploy and not multi_instance" "$@" || status=$?
echo "== PostgreSQL + Redis: everything that stores (the pure JPKI core and the card bridge"
echo "   don't touch the provider's storage: they ran once above; the bench smoke test runs here)"
# Two processes (pytest-xdist): each test has its own database and Redis prefix, and the
# multi-instance tests their own servers on free ports; the suite stays well under 15 min.
MYNAGATE_TEST_BACKEND=postgres $BIN/pytest -q -p no:cacheprovider -n 2 -m "not pcsc and not browser" \
  --ignore=tests/jpki --ignore=tests/bridge "$@" || status=$?
exit $status
