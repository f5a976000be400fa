"""Jobs other than training that load a model — merges, bench generation — queued like runs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from engine.api.base import ApiModel

JobKind = Literal["merge", "bench"]
JobState = Literal["queued", "running", "stopping", "finished", "failed", "stopped"]
MAX_BENCH_SAMPLES = 100


class JobRequest(ApiModel):
    """Body of ``POST /jobs``: what to run on which run's model."""

    kind: JobKind
    run: str = Field(min_length=1, max_length=200)
    checkpoint: int | None = Field(None, ge=0, description="the adapter saved at this step (bench: 0 = the base)")
    suite: str | None = Field(None, max_length=4096, description="bench: the suite JSONL, an absolute path")
    samples: int = Field(1, ge=1, le=MAX_BENCH_SAMPLES, description="bench: answers per suite row")


class JobStatus(ApiModel):
    """A job as the engine keeps it in ``.tunedeck/jobs/<id>/job.json`` (``GET /jobs/{id}``)."""

    id: str
    kind: JobKind
    run: str
    state: JobState
    checkpoint: int | None
    suite: str | None
    samples: int
    submitted: float
    started: float | None
    ended: float | None
    pid: int | None = Field(description="the worker's pid while it runs")
    error: str | None = Field(description="why it failed or stopped, one line")
    output: str | None = Field(description="bench: the completions file the worker wrote")
    result: dict[str, Any] | None = Field(description="merge: the merge summary")
