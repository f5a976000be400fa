"""The CLI's client of the engine service: find it on the campaign's socket, start it if none answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from engine.api import GpuStatus, Health, JobRequest, JobStatus, RunStatus, StartRequest
from engine.errors import NotFoundError, TunedeckError
from engine.runs.launch import python_module
from engine.runs.run_state import pid_is_worker
from engine.store.campaign import Campaign, engine_paths, ensure_private_dir

START_TIMEOUT_S = 20.0
JOB_POLL_S = 0.2


class EngineError(TunedeckError):
    """The engine answered with an error, or could not be reached or started."""


class EngineUnreachable(EngineError):
    """Nothing answers on the engine's socket (it is not running, or it has just died)."""


def _transport(socket: Path) -> httpx.HTTPTransport:
    return httpx.HTTPTransport(uds=str(socket))


def _hold_ctrl_c() -> set[int | signal.Signals] | None:
    """Block SIGINT in this (main) thread; the previous mask, or None where that cannot be done."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    try:
        return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    except (OSError, ValueError):
        return None


def _release_ctrl_c(held: set[int | signal.Signals] | None) -> None:
    if held is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


class EngineClient:
    """Typed calls to one campaign's engine over its Unix socket: ``with EngineClient(campaign) as client:``.

    Closing the client closes its connection only; the engine and its runs go on.
    """

    def __init__(self, campaign: Campaign, *, timeout: float = 30.0) -> None:
        self.campaign = campaign
        self.paths = engine_paths(campaign.root)
        self.http = httpx.Client(transport=_transport(self.paths.socket), base_url="http://engine", timeout=timeout)

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the engine keeps running)."""
        self.http.close()

    # -- lifecycle -----------------------------------------------------------------------
    def health(self) -> Health | None:
        """The engine's /health, or None when nothing answers."""
        if not self.paths.socket.exists():
            return None
        try:
            response = self.http.get("/health", timeout=2.0)
        except (httpx.TransportError, OSError):
            return None
        return Health.model_validate(response.json()) if response.status_code == 200 else None

    def ensure_running(self) -> Health:
        """Start the engine in the background unless one answers; returns its /health."""
        health = self.health()
        if health is not None:
            return health
        ensure_private_dir(self.paths.root)
        # A socket file nobody answers on is left by a killed engine: the new one replaces it.
        with open(self.paths.log, "ab") as log:
            subprocess.Popen(
                python_module("engine.service", str(self.campaign.root)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.campaign.root,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            health = self.health()
            if health is not None:
                return health
            time.sleep(0.05)
        tail = self.paths.log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise EngineError(f"the engine did not start within {START_TIMEOUT_S:.0f} s: {tail[0]}", path=self.paths.log)

    def stop_engine(self, *, timeout: float = 10.0) -> int | None:
        """Ask the engine to exit (workers keep running); returns its pid, None if none ran."""
        health = self.health()
        if health is None:
            return None
        try:
            self.http.post("/shutdown", timeout=2.0)
        except httpx.TransportError:
            os.kill(health.pid, signal.SIGTERM)
        pid = health.pid
        deadline = time.monotonic() + timeout
        # Wait for the process itself to go, not only the socket: it removes its files on the way out.
        while time.monotonic() < deadline and pid_is_worker(pid):
            time.sleep(0.05)
        return pid

    # -- calls ---------------------------------------------------------------------------
    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        """A JSON call; 4xx/5xx become one-line ``TunedeckError``s."""
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise EngineUnreachable(f"cannot reach the engine ({exc})", path=self.paths.socket) from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except (ValueError, AttributeError):
                detail = response.text
            kind = NotFoundError if response.status_code == 404 else EngineError
            raise kind(detail if isinstance(detail, str) else json.dumps(detail))
        return response.json()

    def status(self, run: str) -> RunStatus:
        """One run's state."""
        return RunStatus.model_validate(self.request("GET", f"/runs/{run}"))

    def statuses(self) -> list[RunStatus]:
        """Every run's state."""
        return [RunStatus.model_validate(item) for item in self.request("GET", "/runs")]

    def start(self, run: str, *, resume: bool = False, extend: bool = False) -> RunStatus:
        """Queue a run (or its resume; ``extend`` to train a finished run further)."""
        body = StartRequest(resume=resume, extend=extend).model_dump()
        return RunStatus.model_validate(self.request("POST", f"/runs/{run}/start", json=body))

    def submit_job(self, request: JobRequest) -> JobStatus:
        """Queue a merge or bench-generation job."""
        return JobStatus.model_validate(self.request("POST", "/jobs", json=request.model_dump()))

    def job(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate(self.request("GET", f"/jobs/{job_id}"))

    def stop_job(self, job_id: str, *, reason: str | None = None) -> JobStatus:
        return JobStatus.model_validate(self.request("POST", f"/jobs/{job_id}/stop", json={"reason": reason}))

    def run_job(self, request: JobRequest, say: Callable[[str], None]) -> JobStatus:
        """Queue a job and wait for its end, saying when it waits and when it starts.

        Ctrl-C stops the job (a queued one leaves the queue) before it is passed on. While the job
        is being submitted, Ctrl-C is held back until its id is known: the engine queues the job
        before it answers, and a Ctrl-C in between would otherwise leave it queued with no one
        waiting for it (seen under load).
        """
        job: JobStatus | None = None
        held = _hold_ctrl_c()
        try:
            job = self.submit_job(request)
            _release_ctrl_c(held)  # a Ctrl-C pressed meanwhile arrives now, with the job known
            said = ""
            while job.state in ("queued", "running", "stopping"):
                news = self._job_news(job)
                if news != said:
                    say(news)
                    said = news
                time.sleep(JOB_POLL_S)
                job = self._job_across_restarts(job.id)
        except KeyboardInterrupt:
            if job is not None:
                self.stop_job(job.id, reason="interrupted (Ctrl-C)")
            raise
        finally:
            _release_ctrl_c(held)
        return job

    def _job_across_restarts(self, job_id: str) -> JobStatus:
        """The job's state; when the engine has gone meanwhile, a new one is started (it re-adopts the job)."""
        try:
            return self.job(job_id)
        except EngineUnreachable:
            self.ensure_running()
            return self.job(job_id)

    def _job_news(self, job: JobStatus) -> str:
        if job.state == "queued":
            busy = [s.run for s in self.statuses() if s.state in ("running", "stopping") and s.run != job.run]
            behind = f" behind {', '.join(busy)}" if busy else ""
            return f"{job.kind} of {job.run}: queued{behind} (one GPU job at a time; Ctrl-C leaves the queue)"
        return f"{job.kind} of {job.run}: {job.state}" + (f" (pid {job.pid})" if job.pid else "")

    def stop(self, run: str, *, reason: str | None = None) -> RunStatus:
        """Ask a run to checkpoint and stop."""
        return RunStatus.model_validate(self.request("POST", f"/runs/{run}/stop", json={"reason": reason}))

    def gpu(self) -> GpuStatus:
        """Whether the engine can read GPU statistics, and the newest sample."""
        return GpuStatus.model_validate(self.request("GET", "/gpu"))
