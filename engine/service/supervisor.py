"""Job supervisor: one queue for every job that loads a model, workers that outlive the service.

Training runs, merges and bench generation share one queue and ``[engine] max_concurrent_jobs``
slots (one by default), so "one GPU job at a time" holds whoever asked; a run has at most one
job active at once (a merge of a run that is training waits for it). Workers are started
through ``engine.runs.reaper`` in a session of their own. The supervisor keeps no state the
files do not also hold: ``queued`` events and ``job.json`` files are the queue, the reaper's
pid files say which worker runs, and events.jsonl / job.json say how each ended.

Every method runs on the service's event loop (the routes are ``async``): nothing here is
touched from a thread, so the queue and the active jobs change in one place only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.api import JobRequest, JobStatus
from engine.bench.model_choice import choose_model
from engine.errors import ConfigError, ConflictError, NotFoundError
from engine.runs.jobs import (
    COMPLETIONS_FILE,
    STDERR_FILE,
    STDOUT_FILE,
    job_dir,
    job_result,
    last_line,
    new_job_id,
    prune_finished,
    read_job,
    read_jobs,
    write_job,
)
from engine.runs.launch import bench_command, check_extend, merge_command, prepare_run, python_module, train_command
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
from engine.service.console import rotate_if_over
from engine.store.campaign import Campaign, RunPaths, record_event

log = logging.getLogger("tunedeck.engine")

POLL_INTERVAL_S = 0.2


class JobError(ConflictError):
    """A job request that cannot be honoured in the run's current state."""


@dataclass(frozen=True)
class Queued:
    """One place in the queue: a training run (``job_id`` None) or a job."""

    run: str
    resume: bool = False
    job_id: str | None = None


@dataclass
class Job:
    """A worker the supervisor launched or adopted: a run's training, or a job of a run."""

    run: str
    paths: RunPaths
    folder: Path  # where the reaper keeps worker.pid / worker.exit: the run's folder, or the job's
    job_id: str | None = None
    reaper: subprocess.Popen[bytes] | None = None  # None when adopted from an earlier service
    adopted: dict[str, int | None] = field(default_factory=dict)
    stop_requested: bool = False

    def alive(self) -> bool:
        """True until the reaper has recorded the end (or, without a reaper, the worker ended)."""
        if self.reaper is not None:
            return self.reaper.poll() is None
        reaper, worker = self.adopted.get("reaper_pid"), self.adopted.get("pid")
        if reaper is not None and pid_is_worker(reaper, self.adopted.get("reaper_started")):
            return True
        return worker is not None and pid_is_worker(worker, self.adopted.get("pid_started"))

    def worker_pid(self) -> int | None:
        return worker_pid(RunPaths(self.folder))


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _adopted(record: dict[str, object]) -> dict[str, int | None]:
    keys = ("pid", "pid_started", "reaper_pid", "reaper_started")
    return {key: _int_or_none(record.get(key)) for key in keys}


class Supervisor:
    """Starts queued runs and jobs up to ``max_concurrent`` at once and settles the ones that end."""

    def __init__(self, campaign: Campaign, *, on_change: Callable[[], None] | None = None) -> None:
        self.campaign = campaign
        self.max_concurrent = campaign.config.engine.max_concurrent_jobs
        self.queue: deque[Queued] = deque()
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
        """Re-adopt live workers, settle dead ones, and rebuild the queue from the files."""
        queued: list[tuple[float, Queued]] = []
        for name in self.campaign.run_names():
            paths = self.campaign.run(name)
            last = last_lifecycle_event(paths.events)
            if last is None or last["event"] in TERMINAL_EVENTS or last["event"] == "imported":
                continue
            pid = worker_pid(paths)
            if pid is not None:
                self.active[name] = Job(name, paths, paths.root, adopted=_adopted(worker_record(paths) or {}))
                log.info("adopted %s (worker pid %d)", name, pid)
            elif last["event"] == "queued" and not (paths.root / PID_FILE).exists():
                queued.append((last["ts"], Queued(name, resume=bool(last.get("resume")))))
            else:
                self._settle(name, paths)
        for job in read_jobs(self.campaign):
            if job.state == "queued":
                queued.append((job.submitted, Queued(job.run, job_id=job.id)))
            elif job.state in ("running", "stopping"):
                folder = job_dir(self.campaign, job.id)
                adopted = Job(job.run, self.campaign.run(job.run), folder, job_id=job.id)
                adopted.adopted = _adopted(worker_record(RunPaths(folder)) or {})
                adopted.stop_requested = job.state == "stopping"
                if adopted.alive() and job.run not in self.active:
                    self.active[job.run] = adopted
                    log.info("adopted %s job %s", job.kind, job.id)
                else:
                    self._settle_job(adopted)
        for _, item in sorted(queued, key=lambda pair: pair[0]):
            self.queue.append(item)

    # -- requests ------------------------------------------------------------------------
    async def submit(self, run: str, *, resume: bool = False, extend: bool = False) -> RunStatus:
        """Queue a run (validated end to end first); it starts when a slot is free."""
        paths = self.campaign.run(run)
        # Validation reads the whole dataset: off the loop, so streams keep flowing meanwhile.
        prepared = await asyncio.to_thread(prepare_run, self.campaign, run)
        self._reap_ended()  # a run that just ended may still hold its slot until the next poll
        status = run_status(run, paths)
        state = status.state
        # A run whose files say it ended may still have a process exiting (torch takes a moment
        # to tear down): it can be queued again; _schedule waits for the old process to go.
        if state in ("running", "stopping") or any(q.run == run and q.job_id is None for q in self.queue):
            raise JobError(f"run {run!r} is already {state}", path=paths.root)
        # A run that failed or was stopped before it logged anything can simply be run again.
        never_trained = state in ("failed", "stopped") and not paths.metrics.exists()
        if not resume and state != "created" and not never_trained:
            raise JobError(f"run {run!r} has already run (state {state}); resume it instead", path=paths.root)
        if resume and state == "finished":
            check_extend(run, paths, prepared.config.train.max_steps, extend=extend)
        for stale in (PID_FILE, EXIT_FILE):
            (paths.root / stale).unlink(missing_ok=True)
        paths.stop_request.unlink(missing_ok=True)
        record_event(paths.events, "queued", resume=resume)
        self.queue.append(Queued(run, resume=resume))
        self._schedule()
        self.on_change()
        return self.status(run)

    async def submit_job(self, request: JobRequest) -> JobStatus:
        """Queue a merge or bench-generation job of a run (checked first); it starts when a slot is free."""
        run = request.run
        self.campaign.load_run(run)  # the run must exist (and its name be valid)
        await asyncio.to_thread(self._check_job, request)
        active = self.active.get(run)
        pending_ids = [active.job_id] if active is not None else []
        pending_ids += [item.job_id for item in self.queue if item.run == run]
        for job_id in filter(None, pending_ids):
            pending = read_job(self.campaign, job_id)
            if pending is not None and pending.kind == request.kind == "merge":
                raise JobError(
                    f"a merge of run {run!r} is already {pending.state} (job {pending.id}): wait for it",
                    path=job_dir(self.campaign, pending.id),
                )
        job = JobStatus(
            id=new_job_id(request.kind),
            kind=request.kind,
            run=run,
            state="queued",
            checkpoint=request.checkpoint,
            suite=request.suite,
            samples=request.samples,
            submitted=round(time.time(), 3),
            started=None,
            ended=None,
            pid=None,
            error=None,
            output=None,
            result=None,
        )
        write_job(self.campaign, job)
        prune_finished(self.campaign)
        self.queue.append(Queued(run, job_id=job.id))
        self._schedule()
        self.on_change()
        return self.job(job.id)

    def _check_job(self, request: JobRequest) -> None:
        """What a worker would refuse, refused before queueing (file reads: runs in a thread)."""
        if request.kind == "merge":
            if request.checkpoint == 0:
                raise ConfigError("0 is the base model alone: there is no adapter to merge", field="checkpoint")
            return  # the merge worker picks adapter/ or the newest complete checkpoint, or says there is none
        if request.suite is None:
            raise ConfigError("a bench job needs a suite", field="suite")
        suite = Path(request.suite)
        if not suite.is_absolute() or not suite.is_file():
            raise NotFoundError("no such suite file (give an absolute path)", path=suite)
        # Hashing a merged model is the worker's check (it loads what it verified); the engine's loop
        # only needs to know a model will be there, not to read gigabytes a second time.
        choose_model(self.campaign, request.run, request.checkpoint, verify=False)

    def stop(self, run: str, *, reason: str = "stopped by user") -> RunStatus:
        """Ask a run's active worker to stop (training checkpoints first); drop a queued one."""
        paths = self.campaign.run(run)
        active = self.active.get(run)
        if active is not None and active.job_id is not None:
            self._stop_job(active, reason)
            return self.status(run)
        for item in list(self.queue):
            if item.run == run and item.job_id is None:
                self.queue.remove(item)
                record_event(paths.events, "stopped", step=0, reason=f"{reason} (while queued)")
                self.on_change()
                return self.status(run)
        state = run_status(run, paths).state
        if state == "queued" and run in self.active:
            state = "running"  # launched a moment ago: its reaper has not recorded the worker's pid yet
        if state not in ("running", "stopping"):
            raise JobError(f"run {run!r} is not running (state {state})", path=paths.root)
        if state == "running":
            paths.stop_request.write_text(json.dumps({"reason": reason}) + "\n", encoding="utf-8")
            record_event(paths.events, "stop_requested", reason=reason)
            self.on_change()
        return self.status(run)

    def stop_job(self, job_id: str, *, reason: str = "stopped by user") -> JobStatus:
        """Stop a running job (its worker is signalled) or drop a queued one."""
        job = self.job(job_id)
        for item in list(self.queue):
            if item.job_id == job_id:
                self.queue.remove(item)
                self._finish_job(job, "stopped", error=f"{reason} (while queued)")
                return self.job(job_id)
        active = self.active.get(job.run)
        if active is None or active.job_id != job_id:
            raise JobError(f"job {job_id} is not running (state {job.state})", path=job_dir(self.campaign, job_id))
        self._stop_job(active, reason)
        return self.job(job_id)

    def _stop_job(self, active: Job, reason: str) -> None:
        assert active.job_id is not None
        job = self.job(active.job_id)
        active.stop_requested = True
        pid = active.reaper.pid if active.reaper is not None else active.adopted.get("reaper_pid")
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)  # the reaper forwards it to the worker
        write_job(self.campaign, job.model_copy(update={"state": "stopping", "error": reason}))
        self.on_change()

    def status(self, run: str) -> RunStatus:
        """The run's state as the files say (the campaign must have the run)."""
        self.campaign.load_run(run)
        return run_status(run, self.campaign.run(run))

    def statuses(self) -> list[RunStatus]:
        return [run_status(name, self.campaign.run(name)) for name in self.campaign.run_names()]

    def job(self, job_id: str) -> JobStatus:
        """A job as its job.json says, with the live worker's pid while it runs."""
        job = read_job(self.campaign, job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}", path=job_dir(self.campaign, job_id))
        active = self.active.get(job.run)
        if active is not None and active.job_id == job_id:
            return job.model_copy(update={"pid": active.worker_pid()})
        return job

    def jobs(self) -> list[JobStatus]:
        return [self.job(job.id) for job in read_jobs(self.campaign)]

    # -- internals -----------------------------------------------------------------------
    def _spawn(
        self, folder: Path, kind: str, command: list[str], stdout: Path, stderr: Path
    ) -> subprocess.Popen[bytes]:
        reaper = python_module("engine.runs.reaper", str(folder), kind, "--", *command)
        with open(stdout, "ab") as out, open(stderr, "ab") as err:
            return subprocess.Popen(
                reaper,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # the worker outlives this service
                cwd=folder,
            )

    def _launch(self, item: Queued) -> None:
        paths = self.campaign.run(item.run)
        if item.job_id is not None:
            self._launch_job(item.job_id, paths)
            return
        config = self.campaign.load_run(item.run)
        command = train_command(paths.root, resume=item.resume, gpus=config.train.gpus)
        rotate_if_over(paths.worker_log)  # size-capped console (engine.service.console)
        process = self._spawn(paths.root, "train", command, paths.worker_log, paths.worker_log)
        self.active[item.run] = Job(item.run, paths, paths.root, reaper=process)
        log.info("launched %s (reaper pid %d)", item.run, process.pid)

    def _launch_job(self, job_id: str, paths: RunPaths) -> None:
        job = self.job(job_id)
        folder = job_dir(self.campaign, job_id)
        if job.kind == "merge":
            command = merge_command(paths.root, checkpoint=job.checkpoint)
            output = None
        else:
            assert job.suite is not None
            output = folder / COMPLETIONS_FILE
            command = bench_command(paths.root, Path(job.suite), output, samples=job.samples, checkpoint=job.checkpoint)
        process = self._spawn(folder, job.kind, command, folder / STDOUT_FILE, folder / STDERR_FILE)
        self.active[job.run] = Job(job.run, paths, folder, job_id=job_id, reaper=process)
        write_job(
            self.campaign,
            job.model_copy(
                update={"state": "running", "started": round(time.time(), 3), "output": str(output) if output else None}
            ),
        )
        log.info("launched %s job %s of %s (reaper pid %d)", job.kind, job_id, job.run, process.pid)

    def _schedule(self) -> None:
        while len(self.active) < self.max_concurrent:
            ready = next((item for item in self.queue if item.run not in self.active), None)
            if ready is None:
                return
            self.queue.remove(ready)
            try:
                self._launch(ready)
            except (OSError, ConfigError, NotFoundError) as exc:
                if ready.job_id is not None:
                    self._finish_job(self.job(ready.job_id), "failed", error=f"could not launch: {exc}")
                else:
                    record_event(self.campaign.run(ready.run).events, "failed", error=f"could not launch: {exc}")
            self.on_change()

    def _settle(self, run: str, paths: RunPaths) -> None:
        """Record how a run ended when nobody else did (its reaper died with it)."""
        last = last_lifecycle_event(paths.events)
        if last is not None and last["event"] in TERMINAL_EVENTS:
            return
        ended = _exit_record(paths.root)
        cause = _cause(ended)
        record_event(
            paths.events,
            "failed",
            error=f"worker ended with {cause}",
            exit_code=ended.get("exit_code"),
            signal=ended.get("signal"),
        )
        log.info("settled %s: failed (%s)", run, cause)

    def _settle_job(self, active: Job) -> None:
        """Record how a job ended, from the reaper's exit file and the worker's last words."""
        assert active.job_id is not None
        job = read_job(self.campaign, active.job_id)
        if job is None or job.state in ("finished", "failed", "stopped"):
            return
        ended = _exit_record(active.folder)
        if ended.get("exit_code") == 0:
            result = job_result(active.folder) if job.kind == "merge" else None
            self._finish_job(job, "finished", result=result)
        elif active.stop_requested or job.state == "stopping":
            self._finish_job(job, "stopped", error=job.error or "stopped by user")
        else:
            said = last_line(active.folder / STDERR_FILE) or "(no output)"
            self._finish_job(
                job, "failed", error=f"{job.kind} worker ended with {_cause(ended)}: {said.removeprefix('tunedeck: ')}"
            )

    def _finish_job(
        self, job: JobStatus, state: str, *, error: str | None = None, result: dict[str, Any] | None = None
    ) -> None:
        update = {"state": state, "ended": round(time.time(), 3), "pid": None, "error": error, "result": result}
        write_job(self.campaign, job.model_copy(update=update))
        log.info("%s job %s of %s: %s", job.kind, job.id, job.run, state)
        self.on_change()

    def _reap_ended(self) -> None:
        """Settle workers that have ended and start queued work in their slots."""
        ended = [job for job in self.active.values() if not job.alive()]
        for job in ended:
            if job.reaper is not None:
                job.reaper.wait()  # reap the child so it leaves no zombie
            del self.active[job.run]
            if job.job_id is not None:
                self._settle_job(job)
            elif not any(item.run == job.run and item.job_id is None for item in self.queue):
                # Not when the run was queued again while this worker was still exiting: its last
                # event is then that "queued", and this worker's end was already recorded by it.
                self._settle(job.run, job.paths)
        if ended:
            self._schedule()
            self.on_change()

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            self._reap_ended()


def _exit_record(folder: Path) -> dict[str, object]:
    try:
        ended = json.loads((folder / EXIT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return ended if isinstance(ended, dict) else {}


def _cause(ended: dict[str, object]) -> str:
    if ended.get("signal"):
        return f"signal {ended['signal']}"
    if ended.get("exit_code") is not None:
        return f"exit code {ended['exit_code']}"
    return "an unknown cause (it ended while no service or reaper watched)"
