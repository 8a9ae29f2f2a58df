# Mynagate — the two commands a fresh Debian machine with Python 3.11 needs:
#   make run    serve the provider + demo relying parties on the embedded default
#   make test   install what the tests need (system packages included) and run them
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: run test test-fast lint bench bench-card venv translations clean bridge dist

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
	  (apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV))
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e .
	@touch $(STAMP)

# The test tools include pyscard, which PyPI ships as source only: scripts/test-deps.sh
# installs the compiler, swig and the PC/SC headers it builds with (and the test services).
$(DEVSTAMP): $(STAMP) pyproject.toml constraints.txt
	bash scripts/test-deps.sh
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]' -e ./card_bridge
	@touch $(DEVSTAMP)

venv: $(STAMP)

translations: $(STAMP)
	@# pybabel has no `compile -q`; and there is nothing to compile before a catalog exists.
	@if ls idp/translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
	  $(BIN)/pybabel --quiet compile -d idp/translations; fi

run: $(STAMP) translations
	$(BIN)/python -m idp.demo

# The card bridge's PC/SC parts for the demo card: pyscard (built from source, so swig and
# the PC/SC headers), pcscd and the vpcd virtual reader the card simulator plugs into.
bridge: $(STAMP)
	@command -v swig >/dev/null 2>&1 && dpkg -s libpcsclite-dev >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq swig build-essential libpcsclite-dev)
	bash scripts/pcsc-up.sh
	$(BIN)/pip install -q -c constraints.txt -e './card_bridge[simulator]'

# The card bridge as a school PC installs it: dist/mynagate_card_bridge-<v>-py3-none-any.whl
# (pulls in pyscard) and dist/mynagate-card-bridge-<v>.pyz (one file; pyscard must be
# installed beside it, it is compiled code). Windows/macOS installers: card_bridge/packaging/.
dist: $(STAMP)
	$(BIN)/python card_bridge/packaging/build_dist.py --out dist

test: $(DEVSTAMP) translations
	bash scripts/test-deps.sh
	bash scripts/run-tests.sh

test-fast: $(DEVSTAMP) translations
	$(BIN)/pytest -q -m "not pcsc and not browser and not node and not bench and not deploy" -n 2

lint: $(DEVSTAMP)
	$(BIN)/ruff check idp card_bridge tests bench

# Mynagate under gunicorn on PostgreSQL + Redis beside oidc-provider v9, loaded by wrk
# (installed with apt-get when missing); appends a dated run to bench/results.md. Options go
# in BENCH_ARGS, e.g. make bench BENCH_ARGS="--only sso --seconds 5 --workers 2".
bench: $(STAMP)
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/run.py $(BENCH_ARGS)

# The in-process micro-bench of the card token validation (no services needed).
bench-card: $(STAMP)
	$(BIN)/python bench/bench_card_validation.py

clean:
	rm -rf var test-artifacts .pytest_cache dist
