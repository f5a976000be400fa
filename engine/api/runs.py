"""Runs: their status, the alerts of watch rules, merges and trainer-state imports."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.api.base import ApiModel, JsonFloat
from engine.api.jobs import JobStatus


class RunStatus(ApiModel):
    """A run's state, derived from its files (``tunedeck status --json``, ``GET /runs/{run}``)."""

    run: str
    state: str = Field(description="created | queued | running | stopping | finished | failed | stopped")
    step: int = Field(description="the highest step in metrics.jsonl (0 before the first log)")
    max_steps: int | None
    pid: int | None = Field(description="the worker's pid while it runs")
    reason: str | None = Field(description="why it failed or stopped (from events.jsonl), one line")


class StartRequest(ApiModel):
    """Body of ``POST /runs/{run}/start``."""

    resume: bool = False
    extend: bool = Field(False, description="resume a finished run to train past its old end (max_steps raised)")


class NewRunRequest(ApiModel):
    """Body of ``POST /runs``: a run.toml inside the campaign, placed at runs/<run>/ and queued."""

    run_toml: str = Field(min_length=1, max_length=4096, description="path relative to the campaign folder")


class StopRequest(ApiModel):
    """Body of ``POST /runs/{run}/stop``."""

    reason: str | None = Field(None, max_length=500)


class Alert(ApiModel):
    """A watch rule that fired: where it first fired, the value there, and how often its condition held."""

    rule: str
    metric: str
    first_step: int
    value: JsonFloat
    count: int
    action: Literal["stop", "warn"]


class WatchReport(ApiModel):
    """``tunedeck watch RUN --json`` and ``GET /runs/{run}/alerts``: one alert per rule that fired."""

    alerts: list[Alert]


class TrainerStateImport(ApiModel):
    """What ``tunedeck import trainer-state`` wrote into a run's metrics.jsonl."""

    run: str
    records: int = Field(description="metric records (distinct steps) written from the file")
    steps: int = Field(description="highest step seen (0 when none)")
    metrics: list[str] = Field(description="sorted distinct metric names imported")
    skipped: int = Field(description="log_history entries skipped")
    reasons: list[str] = Field(description="one short line per kind of skip")
    created_run: bool


class MergeProbe(ApiModel):
    """The texts the merged model's logits were compared on."""

    texts: int
    positions: int


class MergeSummary(ApiModel):
    """``tunedeck merge --json``: runs/<run>/merged/manifest.json without its file hashes, plus the folder."""

    run: str
    base: str
    adapter: str
    checkpoint: int | None = Field(description="the checkpoint's step, None for the final adapter")
    created_at: str
    dtype: str
    max_logit_diff: float = Field(description="max |logit difference| of the merged model vs adapter-on-base")
    probe: MergeProbe
    merged: str


class RunCost(ApiModel):
    """A run's declared ``[cost]`` plus its measured judge spend (or a campaign's sums); None: not known."""

    gpu_hours: JsonFloat | None
    training_usd: JsonFloat | None
    eval_usd: JsonFloat | None
    data_usd: JsonFloat | None
    judge_usd: JsonFloat | None = Field(description="measured: what `bench judge` paid its judge (bench_judge events)")
    total_usd: JsonFloat | None = Field(description="training + eval + data + judge, over what is known")
    generation_s: JsonFloat | None = Field(
        description="measured: seconds `bench run` and `bench judge` spent generating with the run's model"
    )
    judging_s: JsonFloat | None = Field(description="measured: seconds `bench judge` waited on its judge")


class CampaignStatus(ApiModel):
    """``tunedeck status --json`` (no RUN): every run, the pending jobs, and the declared costs summed."""

    runs: list[RunStatus]
    jobs: list[JobStatus] = Field(description="queued, running or stopping jobs (merge, bench)")
    costs: dict[str, RunCost] = Field(description="run -> its declared [cost]; runs without one are absent")
    cost_total: RunCost = Field(description="the campaign's sum over every run that declares a cost")
