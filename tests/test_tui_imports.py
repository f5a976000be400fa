"""The TUI is a thin client: importing it loads no ML, DuckDB or NVML library; the CLI hands over to it."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO, tunedeck_here

HEAVY = ("torch", "transformers", "peft", "duckdb", "pynvml", "engine.worker", "engine.cli", "engine.service")


def test_importing_the_tui_loads_no_heavy_library() -> None:
    code = f"import sys, tui.app, tui.__main__; print([m for m in {HEAVY!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_tunedeck_help_still_prints_help() -> None:
    result = tunedeck_here("--help")
    assert result.returncode == 0
    assert "COMMAND" in result.stdout


def test_tunedeck_without_a_command_runs_the_tui(tmp_path: object) -> None:
    """``tunedeck PATH`` execs ``python -m tui PATH``: with no campaign there, the TUI's one-line error."""
    code = "from engine.cli.main import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr == f"tunedeck: no campaign.toml in {tmp_path}, nor in a folder inside it\n"
    assert "Traceback" not in result.stderr
