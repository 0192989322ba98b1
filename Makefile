# The two set-up commands (README): `make run` trains the built-in default experiment,
# `make test` runs the whole test suite (fast and slow tiers). Both create .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-fast lint typecheck

$(BIN)/nnspec: pyproject.toml
	$(PY) -m venv $(VENV)
	# The CPU build of torch lies on this machine's disk; install it first so nothing else pulls a
	# multi-GB CUDA build.
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(BIN)/nnspec

setup: $(BIN)/nnspec

run: setup
	$(BIN)/nnspec train

test: setup
	$(BIN)/python -m pytest -m 'slow or not slow' -n 2 -q

test-fast: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check nnspec tests

# The Python API as users write it type-checks (0 errors), and every user mistake in
# tests/typing/mistakes.py is reported (an unused ignore comment there is an error).
TYPED := tests/typing/usage.py tests/typing/mistakes.py examples/*.py
typecheck: setup
	$(BIN)/mypy $(TYPED)
	$(BIN)/pyright $(TYPED)
