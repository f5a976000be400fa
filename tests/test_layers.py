"""Layers stay apart: the CLI and engine core never load torch, transformers, peft or textual."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO

HEAVY = ("torch", "transformers", "peft", "textual", "duckdb", "pynvml")


@pytest.mark.parametrize(
    "module",
    [
        "engine.cli.main",
        "engine.runs.launch",
        "engine.demo.campaign",
        "engine.store.trainer_state",
        "engine.store.campaign",
    ],
)
def test_module_imports_no_heavy_library(module: str) -> None:
    code = f"import sys, {module}\nloaded = [m for m in {HEAVY!r} if m in sys.modules]\nprint(','.join(loaded))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "", f"{module} loaded {done.stdout.strip()}"


def test_import_contracts_hold() -> None:
    """import-linter's contracts from pyproject.toml (TUI thin, engine free of textual, core free of torch)."""
    lint = REPO / ".venv" / "bin" / "lint-imports"
    command = [str(lint)] if lint.exists() else [sys.executable, "-m", "importlinter.cli"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
