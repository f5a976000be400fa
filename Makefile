# Two commands for a fresh clone: `make demo` and `make test`. Each sets up .venv first.
#
# torch is installed on its own first, pinned: on the reference workstation pip finds a local
# CPU wheel of 2.13.0; without that step a dependency could pull a newer CUDA build (GBs).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tunedeck-installed

.PHONY: setup demo test lint check perf clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/tunedeck demo --headless

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check engine tui queries tests
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test

perf: $(STAMP)
	$(BIN)/python tests/perf/bench_callback_overhead.py --threads 1 --repeats 10

clean:
	rm -rf $(VENV) tunedeck-demo .pytest_cache .mypy_cache .ruff_cache
