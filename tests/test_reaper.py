"""The reaper records a worker's pid and how it ended, and fails the run only when the worker did not say.

The real ``python -m engine.runs.reaper`` around small stand-in workers (no torch), so the fast
loop covers what test_service.py checks end to end with real training (marked slow there).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.runs.reaper import EXIT_FILE, PID_FILE
from tests.helpers import events

KILL_ITSELF = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
SAYS_FINISHED = "import json, sys; open(sys.argv[1], 'a').write(json.dumps({'ts': 1.0, 'event': 'finished'}) + '\\n')"


def reap(run_dir: Path, *worker: str) -> dict[str, Any]:
    """Run the reaper around ``python -c WORKER...`` to the end; returns its worker.exit record."""
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "engine.runs.reaper", str(run_dir), "train", "--", sys.executable, "-c", *worker]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    record: dict[str, Any] = json.loads((run_dir / EXIT_FILE).read_text())
    return record


@pytest.mark.parametrize(
    ("worker", "exit_code", "signal_name", "error"),
    [
        ("import sys; sys.exit(3)", 3, None, "train worker ended with exit code 3"),
        (KILL_ITSELF, None, "SIGKILL", "train worker ended with signal SIGKILL"),
    ],
)
def test_a_worker_that_dies_silently_fails_the_run(
    tmp_path: Path, worker: str, exit_code: int | None, signal_name: str | None, error: str
) -> None:
    run_dir = tmp_path / "runs" / "r1"
    ended = reap(run_dir, worker)
    assert (ended["exit_code"], ended["signal"], ended["kind"]) == (exit_code, signal_name, "train")
    failed = [e for e in events(run_dir) if e["event"] == "failed"]
    assert len(failed) == 1
    assert (failed[0]["error"], failed[0]["exit_code"], failed[0]["signal"]) == (error, exit_code, signal_name)
    pid = json.loads((run_dir / PID_FILE).read_text())
    assert pid["kind"] == "train"
    assert pid["command"][-2:] == ["-c", worker]
    assert isinstance(pid["pid_started"], int)  # taken while the worker lived: the pid's identity


def test_a_worker_that_recorded_its_own_end_is_not_failed(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r1"
    ended = reap(run_dir, SAYS_FINISHED + "; sys.exit(1)", str(run_dir / "events.jsonl"))
    assert (ended["exit_code"], ended["signal"]) == (1, None)
    assert [e["event"] for e in events(run_dir)] == ["finished"]


def test_a_clean_exit_adds_no_event(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r1"
    assert reap(run_dir, "pass")["exit_code"] == 0
    assert events(run_dir) == []
