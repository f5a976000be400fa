"""A run's state, derived from its files: events.jsonl, metrics.jsonl and the reaper's pid/exit files.

The files are the truth, so any process (a new service, the CLI) derives the same state:
queued | running | stopping | finished | failed | stopped, plus ``created`` for a run that
was never launched and ``finished`` for one whose metrics were imported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.api import RunStatus
from engine.runs.liveness import is_alive
from engine.store.campaign import RunPaths
from engine.store.jsonl import read_jsonl
from engine.store.metrics import last_step

TERMINAL_EVENTS = frozenset({"finished", "failed", "stopped"})
LIFECYCLE_EVENTS = TERMINAL_EVENTS | {"queued", "started", "resumed", "checkpoint", "stop_requested", "imported"}
_STATE_OF_EVENT = {
    "queued": "queued",
    "started": "running",
    "resumed": "running",
    "checkpoint": "running",
    "stop_requested": "stopping",
    "imported": "finished",
    "finished": "finished",
    "failed": "failed",
    "stopped": "stopped",
}


def last_lifecycle_event(events_path: Path) -> dict[str, Any] | None:
    """The newest lifecycle event of a run (alerts and merges do not change its state)."""
    last = None
    for record in read_jsonl(events_path, strict=False):
        if record.get("event") in LIFECYCLE_EVENTS:
            last = record
    return last


def worker_record(paths: RunPaths) -> dict[str, Any] | None:
    """The reaper's worker.pid record of a run (pid, reaper_pid, kind, command), if any."""
    try:
        record = json.loads((paths.root / "worker.pid").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def worker_pid(paths: RunPaths) -> int | None:
    """The pid of the run's worker if that very process is alive, else None."""
    record = worker_record(paths) or {}
    try:
        pid = int(record["pid"])
    except (KeyError, TypeError, ValueError):
        return None
    started = record.get("pid_started")
    return pid if is_alive(pid, started if isinstance(started, int) else None) else None


def pid_is_worker(pid: int, started: int | None = None) -> bool:
    """Alive, not a zombie, and the process that was recorded (see ``engine.runs.liveness``)."""
    return is_alive(pid, started)


def run_status(name: str, paths: RunPaths) -> RunStatus:
    """Derive a run's state from its files and the liveness of its worker."""
    events = [e for e in read_jsonl(paths.events, strict=False) if e.get("event") in LIFECYCLE_EVENTS]
    last = events[-1] if events else None
    max_steps = next((e.get("max_steps") for e in reversed(events) if e["event"] == "started"), None)
    pid = worker_pid(paths)
    step = last_step(paths.metrics)
    if last is None:
        state = "created"
    else:
        state = _STATE_OF_EVENT[last["event"]]
        if state == "queued" and pid is not None:
            state = "running"  # launched; the worker has not logged "started" yet (imports take seconds)
        if state in ("running", "stopping") and pid is None:
            # The worker is gone without a terminal event: the reaper (or the service) will
            # record why; until then it is not running any more.
            state = "failed"
    if state in ("finished", "failed", "stopped", "created"):
        pid = None
    reason = None
    if last is not None and state in ("failed", "stopped"):
        said = last.get("error") if last["event"] == "failed" else last.get("reason")
        reason = str(said)[:500] if said else None
    return RunStatus(run=name, state=state, step=step, max_steps=max_steps, pid=pid, reason=reason)
