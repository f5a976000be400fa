"""``python -m engine.runs.reaper RUN_DIR KIND -- COMMAND...``: run a worker and record how it ended.

The service starts this small process in a session of its own, so the worker outlives the
service. The reaper writes ``worker.pid`` (the worker's pid, which ``status`` reports and a
user may kill), waits for the worker, then writes ``worker.exit`` (exit code or signal) and,
when the worker died without saying so itself, a ``failed`` event naming the code or signal.
A new service reads those files to settle runs that ended while no service was watching.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine.runs.jobs import last_line
from engine.runs.liveness import process_start_time
from engine.runs.run_state import TERMINAL_EVENTS, last_lifecycle_event
from engine.store.campaign import RunPaths, record_event
from engine.store.jsonl import write_text_atomic

PID_FILE = "worker.pid"
EXIT_FILE = "worker.exit"


def exit_record(returncode: int) -> dict[str, Any]:
    """Exit code and signal of a finished child, as recorded in worker.exit."""
    if returncode < 0:
        number = -returncode
        return {"exit_code": None, "signal": signal.Signals(number).name, "signal_number": number}
    return {"exit_code": returncode, "signal": None, "signal_number": None}


def main(argv: list[str]) -> int:
    """Spawn the worker command, record its pid, wait, record its end."""
    run_dir, kind, command = Path(argv[0]), argv[1], argv[argv.index("--") + 1 :]
    paths = RunPaths(run_dir)
    (paths.root / EXIT_FILE).unlink(missing_ok=True)
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    # Start times make the pids identities: a recycled pid never passes for our worker.
    record = {
        "pid": child.pid,
        "pid_started": process_start_time(child.pid),
        "reaper_pid": os.getpid(),
        "reaper_started": process_start_time(os.getpid()),
        "kind": kind,
        "command": command,
        "started": time.time(),
    }
    write_text_atomic(paths.root / PID_FILE, json.dumps(record) + "\n")

    # A stop sent to the reaper is meant for the worker (it checkpoints, then ends).
    def forward(signum: int, frame: object) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    returncode = child.wait()
    ended = {**exit_record(returncode), "ended": time.time(), "kind": kind}
    write_text_atomic(paths.root / EXIT_FILE, json.dumps(ended) + "\n")
    if kind != "train":
        return 0  # a job's end is settled into its job.json by the engine, never into a run's events
    last = last_lifecycle_event(paths.events)
    if returncode != 0 and (last is None or last["event"] not in TERMINAL_EVENTS):
        cause = f"signal {ended['signal']}" if ended["signal"] else f"exit code {returncode}"
        said = last_line(paths.worker_log)  # the worker's last words, when it had any
        cause += f": {said.removeprefix('tunedeck: ')[:500]}" if said and not ended["signal"] else ""
        record_event(
            paths.events,
            "failed",
            error=f"{kind} worker ended with {cause}",
            exit_code=ended["exit_code"],
            signal=ended["signal"],
            kind=kind,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
