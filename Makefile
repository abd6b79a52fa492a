# Two commands are the contract (README.md): `make demo` and `make test`.
# Both create .venv when it is missing and install what they need.
#
# What runs where (test markers: tests/conftest.py):
#   make check  ruff, mypy (src, tests, fuzz), the fast tests (unmarked):
#               the loop while editing, under 2 minutes on 2 CPUs
#   make test   ruff, mypy, the fast and the heavy tests (worlds, processes,
#               the demo), the fuzz smoke run, the fuzz build check (a
#               target frozen as a continuous fuzzing job builds it): CI,
#               under 12 minutes on 2 CPUs
#   make soak   the soak tests: the cases of heavy matrices that make test
#               leaves out (each still runs here) and the long soak (hours)
#   make chaos  the real-network chaos suite (tests/chaos, docs/chaos.md):
#               real nodes in network namespaces under real faults; root;
#               minutes. make test runs its one-scenario smoke.
# pytest runs on PYTEST_JOBS workers (pytest-xdist; 0: in one process).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# Fuzz smoke: executions per target in `make test` (seconds, not minutes).
FUZZ_RUNS ?= 100000
# One pytest worker per CPU. loadgroup: tests of one xdist_group (the
# loopback clusters) run on one worker, one after another.
PYTEST_JOBS ?= auto
PYTEST := $(BIN)/pytest -n $(PYTEST_JOBS) --dist loadgroup

.PHONY: demo docs test check lint typecheck unit fast fuzz-smoke fuzz-build soak chaos netdeps corpus clean

$(VENV)/.python-ok:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
	  || { echo "ringward needs Python 3.11+; set PYTHON=python3.11 (or newer)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@touch $@

# The package and its demo extra (rich: the demo's live view).
$(VENV)/.installed: $(VENV)/.python-ok pyproject.toml
	$(PY) -m pip install --quiet -e '.[demo]'
	@touch $@

# Package plus the dev and fuzz extras (for the checks).
$(VENV)/.installed-dev: $(VENV)/.python-ok pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,fuzz]'
	@touch $@ $(VENV)/.installed

# PyInstaller and coverage for the fuzz build check, apart from the dev
# extras: where they cannot be installed, fuzz-build says so and skips.
$(VENV)/.installed-fuzz-build: $(VENV)/.installed-dev
	$(PY) -m pip install --quiet -e '.[fuzz-build]' \
	  || echo "PyInstaller could not be installed: fuzz-build will SKIP (rm $@ to retry)"
	@touch $@

# pdoc for the API reference, apart from the dev extras: where it cannot be
# installed, the reference check of make test (tests/cli/test_packaging.py)
# says so and skips.
$(VENV)/.installed-docs: $(VENV)/.installed-dev
	$(PY) -m pip install --quiet -e '.[docs]' \
	  || echo "pdoc could not be installed: the API reference check will SKIP (rm $@ to retry)"
	@touch $@

demo: $(VENV)/.installed
	$(BIN)/ringward demo

# The API reference, built from the docstrings into build/apidocs/ (git-ignored);
# fails on any pdoc warning.
docs: $(VENV)/.installed-docs
	$(PY) docs/apidocs.py build/apidocs

test: lint typecheck unit fuzz-smoke fuzz-build
	@echo "make test: all checks passed"

check: lint typecheck fast
	@echo "make check: all checks passed (make test runs the heavy tests too)"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests fuzz benchmarks
	$(BIN)/ruff format --check src tests fuzz benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy src tests fuzz

# Every test but the soak and chaos ones (a plain `pytest` skips those too).
unit: $(VENV)/.installed-dev $(VENV)/.installed-docs netdeps
	$(PYTEST) -m "not soak and not chaos"

fast: $(VENV)/.installed-dev
	$(PYTEST) -m "not heavy and not soak and not chaos"

# ip (iproute2) and nft (nftables) for the chaos suite: installed with
# apt-get when missing and we are root; otherwise its tests skip, saying why.
netdeps:
	@if command -v ip >/dev/null 2>&1 && command -v nft >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 nftables >/dev/null) \
	  || echo "iproute2/nftables could not be installed: the chaos tests will SKIP"; \
	else echo "no ip/nft and not root: the chaos tests will SKIP (they need root, iproute2, nftables)"; fi

# The chaos suite, every scenario once (CHAOS_SEED picks the fault timeline);
# one line per scenario at the end. Failing runs keep their logs in
# $${TMPDIR:-/tmp}/ringward-chaos.
CHAOS_SEED ?= 1
CHAOS_RESULTS := $(or $(TMPDIR),/tmp)/ringward-chaos-results.txt
chaos: $(VENV)/.installed-dev netdeps
	@rm -f $(CHAOS_RESULTS)
	RINGWARD_CHAOS=1 RINGWARD_CHAOS_SEED=$(CHAOS_SEED) RINGWARD_CHAOS_RESULTS=$(CHAOS_RESULTS) \
	  $(BIN)/pytest -n 0 -p no:cacheprovider -rsx -m chaos tests/chaos; \
	  rc=$$?; echo "chaos results (seed $(CHAOS_SEED)):"; cat $(CHAOS_RESULTS) 2>/dev/null; exit $$rc

fuzz-smoke: $(VENV)/.installed-dev
	$(PY) fuzz/smoke.py --runs $(FUZZ_RUNS)

# fuzz_decode frozen with PyInstaller as compile_python_fuzzer builds it, in
# fuzzing and coverage modes, each run for a few thousand executions; and
# fuzz/build.sh run with stand-ins (fuzz/check_build.py, about a minute).
fuzz-build: $(VENV)/.installed-fuzz-build
	$(PY) fuzz/check_build.py

# Long runs, not part of `make test`: the matrix seeds, Byzantine worlds and
# attack worlds make test leaves out, and thousands of longer simulator seeds
# (RINGWARD_SOAK_SEEDS, default 3000; hours).
soak: $(VENV)/.installed-dev
	RINGWARD_SOAK=1 $(PYTEST) -m soak -p no:cacheprovider

# Regenerate the seed corpora under fuzz/corpus/ from real encodings.
corpus: $(VENV)/.installed-dev
	$(PY) fuzz/make_corpus.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis fuzz/.work build/apidocs
