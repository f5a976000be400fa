# Two commands for a fresh clone: `make demo` and `make test`. Each sets up .venv first.
#
# torch is installed on its own first, pinned: on the reference workstation pip finds a local
# CPU wheel of 2.13.0; without that step a dependency could pull a newer CUDA build (GBs).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tunedeck-installed

.PHONY: setup demo test lint check perf perf-tui clean

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

# The TUI's benchmarks (tests/perf/README.md): first paint, Monitor redraw, live latency, RSS. Needs tmux.
perf-tui: $(STAMP)
	$(BIN)/python tests/perf/bench_tui_first_paint.py
	$(BIN)/python tests/perf/bench_tui_monitor_redraw.py
	$(BIN)/python tests/perf/bench_tui_latency.py
	$(BIN)/python tests/perf/bench_tui_rss.py

clean:
	rm -rf $(VENV) tunedeck-demo .pytest_cache .mypy_cache .ruff_cache
