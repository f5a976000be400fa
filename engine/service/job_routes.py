"""``/jobs``: merges and bench generation, queued with training in the supervisor's one queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, FastAPI

from engine.api import JobRequest, JobStatus, StopRequest
from engine.service.supervisor import Supervisor


def add_job_routes(app: FastAPI, supervisor: Supervisor) -> None:
    """Register the job routes (async: the supervisor changes only on the event loop)."""

    @app.post("/jobs", response_model=JobStatus)
    async def submit_job(request: JobRequest) -> JobStatus:
        return await supervisor.submit_job(request)

    @app.get("/jobs", response_model=list[JobStatus])
    async def jobs() -> list[JobStatus]:
        return supervisor.jobs()

    @app.get("/jobs/{job_id}", response_model=JobStatus)
    async def job(job_id: str) -> JobStatus:
        return supervisor.job(job_id)

    @app.post("/jobs/{job_id}/stop", response_model=JobStatus)
    async def stop_job(job_id: str, request: Annotated[StopRequest | None, Body()] = None) -> JobStatus:
        reason = (request.reason if request else None) or "stopped by user"
        return supervisor.stop_job(job_id, reason=reason)
