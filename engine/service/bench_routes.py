"""Bench endpoints of the engine service: what the Runs and Compare screens show.

The TUI never imports DuckDB, so it asks the service, which answers exactly what the CLI's
``--json`` prints (same functions, same shapes). Each request opens the bench table and
closes it again: the cache file stays free for CLI commands in other terminals.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query

from engine.bench.compare import diff, flaky_rows, judged_summary, pass_rates, resolve_baseline
from engine.bench.db import opened
from engine.bench.gate import evaluate_gate
from engine.bench.store import parse_ref
from engine.store.campaign import Campaign


def add_bench_routes(app: FastAPI, campaign: Campaign) -> None:
    """GET /bench, /bench/diff and /bench/gate/{run}."""

    @app.get("/bench")
    def bench(
        run: Annotated[list[str] | None, Query(description="RUN or RUN@STEP; all when absent")] = None,
    ) -> dict[str, Any]:
        refs = [str(parse_ref(r)) for r in run] if run else None
        with opened(campaign) as db:
            judge = campaign.config.judge
            return {
                "pass_rates": pass_rates(db, refs),
                "flaky": flaky_rows(db, refs),
                "judged": judged_summary(db, judge.weights, refs) if judge else {},
                "warnings": db.warnings,
            }

    @app.get("/bench/diff")
    def bench_diff(
        candidate: Annotated[str, Query(description="RUN or RUN@STEP")],
        against: Annotated[str | None, Query(description="a run, or 'production' (default)")] = None,
    ) -> dict[str, Any]:
        ref = str(parse_ref(candidate, field="candidate"))
        baseline, is_production = resolve_baseline(campaign, against)
        with opened(campaign) as db:
            return diff(db, ref, baseline, baseline_is_production=is_production).to_json()

    @app.get("/bench/gate/{run}")
    def gate(run: str) -> dict[str, Any]:
        ref = str(parse_ref(run))
        with opened(campaign) as db:
            return evaluate_gate(db, ref).to_json()
