"""Helpers for tests that drive the real CLI and worker processes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# A run.toml that trains the tiny model fast; format with max_steps, logging_steps, save_steps.
FAST_RUN = """\
dataset = "datasets/train.jsonl"
[train]
learning_rate = 5e-3
batch_size = 16
max_steps = {max_steps}
logging_steps = {logging_steps}
save_steps = {save_steps}
seed = 0
"""


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tunedeck(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real ``tunedeck`` CLI in a subprocess."""
    return subprocess.run(
        [sys.executable, "-c", "from engine.cli.main import main; main()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )


def tunedeck_here(*args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI's ``main`` in this process, for commands refused before any process starts.

    Same result as ``tunedeck`` (exit status, stdout, stderr) without the interpreter start and
    imports a subprocess pays; argparse errors and ``sys.exit`` end ``main`` as they end the process.
    """
    from engine.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exited:
            code = exited.code
        else:
            code = 0
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    return subprocess.CompletedProcess(["tunedeck", *args], returncode, out.getvalue(), err.getvalue())


def worker(run_dir: Path, *extra: str) -> subprocess.Popen[str]:
    """Start the real training worker process."""
    return subprocess.Popen(
        [sys.executable, "-m", "engine.worker", str(run_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def events(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(condition: Callable[[], Any], timeout: float = 120.0, what: str = "condition", poll: float = 0.05) -> Any:
    """``condition()``'s first truthy value, polled until ``timeout`` seconds, else a named failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop_engine_and_workers(campaign_root: Path) -> None:
    """Test teardown: the campaign's engine stopped and any worker it left behind killed."""
    tunedeck("engine", "stop", "--campaign", str(campaign_root))
    for pid_file in (campaign_root / "runs").glob("*/worker.pid"):
        with contextlib.suppress(ProcessLookupError, ValueError, KeyError, OSError):
            os.kill(json.loads(pid_file.read_text())["pid"], signal.SIGKILL)


def processes_running(*needles: str, unless: str | None = None) -> list[int]:
    """Pids of live, non-zombie processes whose command line holds every needle (and not ``unless``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and all(n in cmdline for n in needles) and (unless is None or unless not in cmdline):
            found.append(int(entry.name))
    return found


def write_run_toml(campaign_root: Path, name: str, **settings: int) -> Path:
    """``<campaign>/<name>.toml`` with FAST_RUN (300 steps, a log every step unless ``settings`` say otherwise)."""
    values = {"max_steps": 300, "logging_steps": 1, "save_steps": 100} | settings
    path = campaign_root / f"{name}.toml"
    path.write_text(FAST_RUN.format(**values))
    return path


def preference_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Preference rows of the reverse task: chosen is the answer, rejected the answer shouted (easy to tell apart)."""
    from engine.demo.reverse_task import reverse_rows

    return [
        {"prompt": r["prompt"], "chosen": r["completion"], "rejected": r["completion"].upper(), "task_id": r["task_id"]}
        for r in reverse_rows(n, seed=seed)
    ]


def grpo_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """GRPO rows of the reverse task: the answer in ``answer``, the task (sequence length) in ``task``."""
    from engine.demo.reverse_task import reverse_rows

    return [
        {"prompt": r["prompt"], "answer": r["completion"], "task": f"len{len(r['completion'].split())}"}
        for r in reverse_rows(n, seed=seed)
    ]
