"""What the TUI's Runs, Monitor and Compare screens ask for: small answers whatever the run's size.

- ``GET /runs/summary``: the Runs table in one request (engine.service.run_summary);
- ``GET /runs/{run}/series`` and ``/runs/{run}/metric-names``: a metric decimated to at most N
  buckets, every point on disk considered, from the per-run column index (engine.service.metric_index);
- ``GET /runs/{run}/console``: the last lines of the worker's console (engine.service.console);
- ``GET /bench/rows`` and ``/bench/anchors``: a diff's rows paged in DuckDB, and the anchor
  matrix (engine.bench.answers);
- ``GET /bench/totals``: a diff's per-bench counts and p-value without its rows
  (engine.bench.answers.diff_totals; ``/bench/diff`` lists every row key: 8 MB for a 500k-row diff).

The routes are sync (they read files and DuckDB), so FastAPI runs them in its threadpool; the
indexes lock per run.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.responses import PlainTextResponse

from engine.api import AnchorMatrix, BenchRowsPage, MetricNames, MetricSeries, RunSummary
from engine.api.monitor import MAX_BUCKETS, MAX_PAGE, DiffTotals
from engine.bench import answers
from engine.errors import TunedeckError
from engine.service.console import tail_lines
from engine.service.metric_index import MetricIndexes
from engine.service.run_summary import RunSummaries
from engine.service.supervisor import Supervisor

DEFAULT_BUCKETS = 400
DEFAULT_TAIL, MAX_TAIL = 200, 5000
_CLASSES = ("kept", "lost", "gained", "still_failing", "only_candidate", "only_baseline")


def add_monitor_routes(app: FastAPI, supervisor: Supervisor, summaries: RunSummaries) -> None:
    """Register the monitor routes; ``/runs/summary`` must come before ``/runs/{run}``."""
    campaign = supervisor.campaign
    indexes = MetricIndexes()

    @app.get("/runs/summary", response_model=list[RunSummary])
    def runs_summary() -> list[RunSummary]:
        return summaries.summaries()

    @app.get("/runs/{run}/series", response_model=MetricSeries)
    def series(
        run: str,
        metric: Annotated[str, Query(min_length=1)],
        start: Annotated[int | None, Query(description="first step (default: the first logged)")] = None,
        end: Annotated[int | None, Query(description="last step (default: the last logged)")] = None,
        buckets: Annotated[int, Query(ge=2, le=MAX_BUCKETS)] = DEFAULT_BUCKETS,
    ) -> MetricSeries:
        supervisor.status(run)
        return indexes.series(run, campaign.run(run).metrics, metric, start, end, buckets)

    @app.get("/runs/{run}/metric-names", response_model=MetricNames)
    def metric_names(run: str) -> MetricNames:
        supervisor.status(run)
        return indexes.names(run, campaign.run(run).metrics)

    @app.get("/runs/{run}/console", response_class=PlainTextResponse)
    def console(run: str, tail: Annotated[int, Query(ge=1, le=MAX_TAIL)] = DEFAULT_TAIL) -> PlainTextResponse:
        supervisor.status(run)
        return PlainTextResponse(tail_lines(campaign.run(run).worker_log, tail))

    @app.get("/bench/rows", response_model=BenchRowsPage)
    def bench_rows(
        candidate: Annotated[str, Query(description="RUN or RUN@STEP")],
        against: Annotated[str | None, Query(description="a run, or 'production' (default)")] = None,
        klass: Annotated[str | None, Query(description=f"comma-separated, of {', '.join(_CLASSES)}")] = None,
        bench: Annotated[str | None, Query(description="comma-separated bench names")] = None,
        q: Annotated[str | None, Query(description="case-insensitive substring of task id or error")] = None,
        sort: Annotated[answers.RowsSort, Query()] = "bench",
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    ) -> BenchRowsPage:
        page, _ = answers.bench_rows(
            campaign, candidate, against, klasses=_classes(klass), benches=_csv(bench), q=q,
            sort=sort, offset=offset, limit=limit,
        )  # fmt: skip
        return page

    @app.get("/bench/totals", response_model=DiffTotals)
    def bench_totals(
        candidate: Annotated[str, Query(description="RUN or RUN@STEP")],
        against: Annotated[str | None, Query(description="a run, or 'production' (default)")] = None,
    ) -> DiffTotals:
        return answers.diff_totals(campaign, candidate, against)

    @app.get("/bench/anchors", response_model=AnchorMatrix)
    def bench_anchors(
        runs: Annotated[str | None, Query(description="comma-separated refs (default: every run with results)")] = None,
        rows: Annotated[str | None, Query(description="comma-separated task ids or bench:task_id (no [gate])")] = None,
    ) -> AnchorMatrix:
        return answers.anchor_matrix(campaign, _csv(runs), _csv(rows))[0]


def _csv(text: str | None) -> list[str] | None:
    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    return items or None


def _classes(text: str | None) -> list[str] | None:
    classes = _csv(text)
    for name in classes or []:
        if name not in _CLASSES:
            raise TunedeckError(f"not a diff class: {name!r} (one of {', '.join(_CLASSES)})", field="klass")
    return classes
