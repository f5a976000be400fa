"""What the TUI asks the engine for: small answers whatever the run's size.

A metric's history comes **decimated** (min / max / last per bucket over a step range, every point
on disk considered, first and last points kept), bench rows come **paged** (filters and sorting in
DuckDB), and the Runs table comes in **one** request. See ../shared/DESIGN.md "The TUI".
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.api.base import ApiModel, JsonFloat
from engine.api.bench import DiffBenchTotals, JudgedBenchDiff, StepCheck

MAX_BUCKETS = 4000
MAX_PAGE = 1000


class EvalBest(ApiModel):
    """The best value of a run's eval metric (lowest for losses, highest otherwise) and where."""

    metric: str
    value: JsonFloat
    step: int


class RunSummary(ApiModel):
    """One row of the Runs table (``GET /runs/summary``)."""

    run: str
    state: str
    step: int
    max_steps: int | None
    pid: int | None
    reason: str | None
    last_loss: JsonFloat | None
    best_eval: EvalBest | None
    pass_rates: dict[str, float] = Field(description="bench -> first-sample pass rate of the run's own ref")
    gate: Literal["passed", "failed"] | None = Field(description="None: no [gate], or no bench results yet")
    alerts: int = Field(description="alert events in events.jsonl")
    production: bool
    job: str | None = Field(description="kind of the run's queued or running job (merge, bench), if any")


class SeriesBucket(ApiModel):
    """Every logged value of one metric with ``first_step <= step <= last_step``, reduced."""

    first_step: int
    last_step: int
    min: JsonFloat
    max: JsonFloat
    last: JsonFloat = Field(description="the value at last_step")
    count: int
    first_ts: float | None = Field(description="wall time (metrics.jsonl ts) of the first_step line; None: no ts")
    last_ts: float | None = Field(description="wall time (metrics.jsonl ts) of the last_step line; None: no ts")


class MetricSeries(ApiModel):
    """``GET /runs/{run}/series?metric=&start=&end=&buckets=``: at most ``buckets`` buckets."""

    run: str
    metric: str
    start: int | None = Field(description="the step range asked for (None: from the first step)")
    end: int | None
    points: int = Field(description="logged values in the range, before decimation")
    buckets: list[SeriesBucket]


class MetricNames(ApiModel):
    """``GET /runs/{run}/metric-names``: every metric the run has logged, with its latest value."""

    run: str
    steps: int = Field(description="distinct steps logged")
    latest: dict[str, JsonFloat | None] = Field(description="metric -> its value at the last step it was logged")


DiffClass = Literal["kept", "lost", "gained", "still_failing", "only_candidate", "only_baseline"]


class BenchRow(ApiModel):
    """One row of a diff page."""

    bench: str
    task_id: str
    klass: DiffClass
    candidate_passed: bool | None
    baseline_passed: bool | None
    flaky: bool
    error: str | None = Field(description="the candidate's error on this row, if it failed")


class BenchRowsPage(ApiModel):
    """``GET /bench/rows?candidate=&against=&klass=&bench=&q=&sort=&offset=&limit=``."""

    candidate: str
    baseline: str
    total: int = Field(description="rows matching the filters, over all pages")
    offset: int
    limit: int
    rows: list[BenchRow]


class AnchorMatrix(ApiModel):
    """``GET /bench/anchors?runs=a,b,c``: the gate's anchors (or named rows) down, runs across."""

    runs: list[str]
    rows: list[str] = Field(description="task ids (or bench:task_id)")
    cells: list[list[bool | None]] = Field(description="cells[row][run]: passed, failed, or None (not evaluated)")


class DiffTotals(ApiModel):
    """``GET /bench/totals?candidate=&against=``: a diff's counts per bench and the McNemar p-value, no rows."""

    candidate: str
    baseline: str
    baseline_is_production: bool
    p_value: float | None = Field(description="exact McNemar on lost vs gained; None when no row is shared")
    benches: dict[str, DiffBenchTotals]
    judged: dict[str, JudgedBenchDiff] = Field(description="judged benches both sides have, as in BenchDiff")
    steps: StepCheck
