# The two set-up commands (README): `make run` trains the built-in default experiment,
# `make test` runs the whole test suite (fast and slow tiers). Both create .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-fast test-ray lint typecheck

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

# Hydra's Ray launcher pins cloudpickle<3: it gets its own venv (the CPU torch first, then nnspec
# with the `ray` extra and pytest), and only the Ray test runs there.
RAY_BIN := .venv-ray/bin
$(RAY_BIN)/nnspec: pyproject.toml
	$(PY) -m venv .venv-ray
	$(RAY_BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(RAY_BIN)/pip install --quiet --disable-pip-version-check -e '.[ray]' 'pytest>=8'
	touch $(RAY_BIN)/nnspec

test-ray: $(RAY_BIN)/nnspec
	$(RAY_BIN)/python -m pytest -m 'slow or not slow' -q tests/hydra/test_hydra_ray.py

lint: setup
	$(BIN)/ruff check nnspec tests

# The Python API as users write it type-checks (0 errors), and every user mistake in
# tests/typing/mistakes.py is reported (an unused ignore comment there is an error).
TYPED := tests/typing/usage.py tests/typing/mistakes.py examples/*.py
typecheck: setup
	$(BIN)/mypy $(TYPED)
	$(BIN)/pyright $(TYPED)
