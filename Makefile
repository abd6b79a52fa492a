# Two commands are the contract (README.md): `make demo` and `make test`.
# Both create .venv when it is missing and install what they need.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# Fuzz smoke: executions per target in `make test` (seconds, not minutes).
FUZZ_RUNS ?= 100000

.PHONY: demo test lint typecheck unit fuzz-smoke soak corpus clean

$(VENV)/.python-ok:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
	  || { echo "ringward needs Python 3.11+; set PYTHON=python3.11 (or newer)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@touch $@

# The package alone (for the demo).
$(VENV)/.installed: $(VENV)/.python-ok pyproject.toml
	$(PY) -m pip install --quiet -e .
	@touch $@

# Package plus the dev and fuzz extras (for the checks).
$(VENV)/.installed-dev: $(VENV)/.python-ok pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,fuzz]'
	@touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/ringward demo

test: lint typecheck unit fuzz-smoke
	@echo "make test: all checks passed"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests fuzz benchmarks
	$(BIN)/ruff format --check src tests fuzz benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy src

unit: $(VENV)/.installed-dev
	$(BIN)/pytest

fuzz-smoke: $(VENV)/.installed-dev
	$(PY) fuzz/smoke.py --runs $(FUZZ_RUNS)

# Long runs, not part of `make test`: thousands of simulator seeds
# (RINGWARD_SOAK_SEEDS, default 3000).
soak: $(VENV)/.installed-dev
	RINGWARD_SOAK=1 $(BIN)/pytest -m slow -q -p no:cacheprovider tests/test_sim_matrix.py

# Regenerate the seed corpora under fuzz/corpus/ from real encodings.
corpus: $(VENV)/.installed-dev
	$(PY) fuzz/make_corpus.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis fuzz/.work
