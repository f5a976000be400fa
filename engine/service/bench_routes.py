"""Bench endpoints of the engine service: what the Runs and Compare screens show.

The TUI never imports DuckDB, so it asks the service, which answers exactly what the CLI's
``--json`` prints: the same functions (engine.bench.answers) and the same models (engine.api).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query

from engine.api import BenchDiff, BenchShowWithWarnings, GateResult
from engine.bench import answers
from engine.store.campaign import Campaign


def add_bench_routes(app: FastAPI, campaign: Campaign) -> None:
    """GET /bench, /bench/diff and /bench/gate/{run}."""

    @app.get("/bench", response_model=BenchShowWithWarnings)
    def bench(
        run: Annotated[list[str] | None, Query(description="RUN or RUN@STEP; all when absent")] = None,
    ) -> BenchShowWithWarnings:
        show, warnings = answers.bench_show(campaign, run)
        return BenchShowWithWarnings(**dict(show), warnings=warnings)

    @app.get("/bench/diff", response_model=BenchDiff)
    def bench_diff(
        candidate: Annotated[str, Query(description="RUN or RUN@STEP")],
        against: Annotated[str | None, Query(description="a run, or 'production' (default)")] = None,
        same_step: Annotated[bool, Query(description="against the baseline run at the candidate's step")] = False,
    ) -> BenchDiff:
        return answers.bench_diff(campaign, candidate, against, same_step=same_step)[0]

    @app.get("/bench/gate/{run}", response_model=GateResult)
    def gate(run: str) -> GateResult:
        return answers.gate(campaign, run)[0]
