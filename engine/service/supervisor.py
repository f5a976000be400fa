"""Job supervisor: a queue of runs, worker processes that outlive the service, re-adoption.

Workers are started through ``engine.runs.reaper`` in a session of their own. The supervisor
keeps no state that the files do not also hold: ``queued`` events are the queue, the
reaper's pid file says which worker runs, and events.jsonl says how each run ended.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import TunedeckError
from engine.runs.launch import prepare_run, python_module, train_command
from engine.runs.reaper import EXIT_FILE, PID_FILE
from engine.runs.run_state import (
    TERMINAL_EVENTS,
    RunStatus,
    last_lifecycle_event,
    pid_is_worker,
    run_status,
    worker_pid,
    worker_record,
)
from engine.store.campaign import Campaign, RunPaths, record_event

log = logging.getLogger("tunedeck.engine")

POLL_INTERVAL_S = 0.2


class JobError(TunedeckError):
    """A job request that cannot be honoured in the run's current state."""


@dataclass
class Job:
    """A run the supervisor launched or adopted."""

    run: str
    paths: RunPaths
    reaper: subprocess.Popen[bytes] | None = None  # None when adopted from an earlier service
    adopted_pid: int | None = None
    adopted_pid_started: int | None = None
    adopted_reaper_pid: int | None = None
    adopted_reaper_started: int | None = None

    def alive(self) -> bool:
        """True until the reaper has recorded the end (or, without a reaper, the worker ended)."""
        if self.reaper is not None:
            return self.reaper.poll() is None
        if self.adopted_reaper_pid is not None and pid_is_worker(self.adopted_reaper_pid, self.adopted_reaper_started):
            return True
        return self.adopted_pid is not None and pid_is_worker(self.adopted_pid, self.adopted_pid_started)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Supervisor:
    """Starts queued runs up to ``max_concurrent`` at once and settles the ones that end."""

    def __init__(self, campaign: Campaign, *, on_change: Callable[[], None] | None = None) -> None:
        self.campaign = campaign
        self.max_concurrent = campaign.config.engine.max_concurrent_jobs
        self.queue: deque[tuple[str, bool]] = deque()
        self.active: dict[str, Job] = {}
        self.on_change = on_change or (lambda: None)
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Adopt what earlier services left running, settle what died, then start supervising."""
        self.adopt()
        self._schedule()
        self._task = asyncio.create_task(self._monitor(), name="supervisor")

    async def close(self) -> None:
        """Stop supervising; workers keep running and a later service adopts them."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def adopt(self) -> None:
        """Re-adopt live workers, settle dead ones, and rebuild the queue from ``queued`` events."""
        queued: list[tuple[float, str, bool]] = []
        for name in self.campaign.run_names():
            paths = self.campaign.run(name)
            last = last_lifecycle_event(paths.events)
            if last is None or last["event"] in TERMINAL_EVENTS or last["event"] == "imported":
                continue
            pid = worker_pid(paths)
            if pid is not None:
                record = worker_record(paths) or {}
                self.active[name] = Job(
                    name,
                    paths,
                    adopted_pid=pid,
                    adopted_pid_started=_int_or_none(record.get("pid_started")),
                    adopted_reaper_pid=_int_or_none(record.get("reaper_pid")),
                    adopted_reaper_started=_int_or_none(record.get("reaper_started")),
                )
                log.info("adopted %s (worker pid %d)", name, pid)
            elif last["event"] == "queued" and not (paths.root / PID_FILE).exists():
                queued.append((last["ts"], name, bool(last.get("resume"))))
            else:
                self._settle(name, paths)
        for _, name, resume in sorted(queued):
            self.queue.append((name, resume))

    # -- requests ------------------------------------------------------------------------
    def submit(self, run: str, *, resume: bool = False) -> RunStatus:
        """Queue a run (validated end to end first); it starts when a slot is free."""
        paths = self.campaign.run(run)
        prepare_run(self.campaign, run)  # bad config or data is refused before it is queued
        self._reap_ended()  # a run that just ended may still hold its slot until the next poll
        state = run_status(run, paths).state
        # A run whose files say it ended may still have a process exiting (torch takes a moment
        # to tear down): it can be queued again; _schedule waits for the old process to go.
        if state in ("running", "stopping") or any(q == run for q, _ in self.queue):
            raise JobError(f"run {run!r} is already {state}", path=paths.root)
        if not resume and state not in ("created",):
            raise JobError(f"run {run!r} has already run (state {state}); resume it instead", path=paths.root)
        for stale in (PID_FILE, EXIT_FILE):
            (paths.root / stale).unlink(missing_ok=True)
        paths.stop_request.unlink(missing_ok=True)
        record_event(paths.events, "queued", resume=resume)
        self.queue.append((run, resume))
        self._schedule()
        self.on_change()
        return self.status(run)

    def stop(self, run: str, *, reason: str = "stopped by user") -> RunStatus:
        """Ask a running worker to checkpoint and stop; drop a queued run from the queue."""
        paths = self.campaign.run(run)
        for item in list(self.queue):
            if item[0] == run:
                self.queue.remove(item)
                record_event(paths.events, "stopped", step=0, reason=f"{reason} (while queued)")
                self.on_change()
                return self.status(run)
        state = run_status(run, paths).state
        if state not in ("running", "stopping"):
            raise JobError(f"run {run!r} is not running (state {state})", path=paths.root)
        if state == "running":
            paths.stop_request.write_text(json.dumps({"reason": reason}) + "\n", encoding="utf-8")
            record_event(paths.events, "stop_requested", reason=reason)
            self.on_change()
        return self.status(run)

    def status(self, run: str) -> RunStatus:
        """The run's state as the files say (the campaign must have the run)."""
        self.campaign.load_run(run)
        return run_status(run, self.campaign.run(run))

    def statuses(self) -> list[RunStatus]:
        return [run_status(name, self.campaign.run(name)) for name in self.campaign.run_names()]

    # -- internals -----------------------------------------------------------------------
    def _launch(self, run: str, resume: bool) -> None:
        paths = self.campaign.run(run)
        config = self.campaign.load_run(run)
        command = train_command(paths.root, resume=resume, gpus=config.train.gpus)
        reaper = python_module("engine.runs.reaper", str(paths.root), "train", "--", *command)
        with open(paths.worker_log, "ab") as out:
            process = subprocess.Popen(
                reaper,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the worker outlives this service
                cwd=paths.root,
            )
        self.active[run] = Job(run, paths, reaper=process)
        log.info("launched %s (reaper pid %d)", run, process.pid)

    def _schedule(self) -> None:
        while len(self.active) < self.max_concurrent:
            ready = next((item for item in self.queue if item[0] not in self.active), None)
            if ready is None:
                return
            self.queue.remove(ready)
            run, resume = ready
            try:
                self._launch(run, resume)
            except (OSError, TunedeckError) as exc:
                record_event(self.campaign.run(run).events, "failed", error=f"could not launch: {exc}")
            self.on_change()

    def _settle(self, run: str, paths: RunPaths) -> None:
        """Record how a run ended when nobody else did (its reaper died with it)."""
        last = last_lifecycle_event(paths.events)
        if last is not None and last["event"] in TERMINAL_EVENTS:
            return
        try:
            ended = json.loads((paths.root / EXIT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            ended = {}
        if ended.get("signal"):
            cause = f"signal {ended['signal']}"
        elif ended.get("exit_code") is not None:
            cause = f"exit code {ended['exit_code']}"
        else:
            cause = "an unknown cause (it ended while no service or reaper watched)"
        record_event(
            paths.events,
            "failed",
            error=f"worker ended with {cause}",
            exit_code=ended.get("exit_code"),
            signal=ended.get("signal"),
        )
        log.info("settled %s: failed (%s)", run, cause)

    def _reap_ended(self) -> None:
        """Settle jobs whose worker has ended and start queued runs in their slots."""
        ended = [job for job in self.active.values() if not job.alive()]
        for job in ended:
            if job.reaper is not None:
                job.reaper.wait()  # reap the child so it leaves no zombie
            del self.active[job.run]
            self._settle(job.run, job.paths)
        if ended:
            self._schedule()
            self.on_change()

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            self._reap_ended()
