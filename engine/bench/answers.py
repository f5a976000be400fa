"""The bench questions the CLI and the service both answer, each computed here once.

Each function opens the bench table, answers, and closes it again (the cache file stays free
for other terminals). It returns the answer's model and the lines the table skipped while it
read the bench files (the CLI prints them on stderr, the service hands them to the TUI).
"""

from __future__ import annotations

from engine.api import BenchDiff, BenchShow, FlakyRow, GateResult, JudgedBench, PassRate
from engine.bench.compare import diff, flaky_rows, judged_summary, pass_rates, resolve_baseline
from engine.bench.db import opened
from engine.bench.gate import evaluate_gate
from engine.bench.store import parse_ref, resolve_ref
from engine.store.campaign import Campaign


def bench_show(campaign: Campaign, runs: list[str] | None = None) -> tuple[BenchShow, list[str]]:
    """Pass rate per run and bench, flaky rows, and judged scores when campaign.toml declares [judge]."""
    refs = [str(parse_ref(r)) for r in runs] if runs else None
    judge = campaign.config.judge
    with opened(campaign) as db:
        show = BenchShow(
            pass_rates=[PassRate(**record) for record in pass_rates(db, refs)],
            flaky=[FlakyRow(**record) for record in flaky_rows(db, refs)],
            judged={
                run: {bench: JudgedBench(**entry) for bench, entry in benches.items()}
                for run, benches in (judged_summary(db, judge.weights, refs) if judge else {}).items()
            },
        )
        return show, list(db.warnings)


def bench_diff(
    campaign: Campaign, candidate: str, against: str | None = None, *, field: str = "candidate"
) -> tuple[BenchDiff, list[str]]:
    """KEPT / LOST / GAINED / STILL FAILING of ``candidate`` against ``against`` (production when None).

    ``field`` names the candidate in an error (the CLI's argument is ``CANDIDATE``).
    """
    ref = str(parse_ref(candidate, field=field))
    baseline, is_production = resolve_baseline(campaign, against)
    with opened(campaign) as db:
        return diff(db, ref, baseline, baseline_is_production=is_production), list(db.warnings)


def gate(campaign: Campaign, run: str, checkpoint: int | None = None) -> tuple[GateResult, list[str]]:
    """campaign.toml's [gate] applied to a run, or to the adapter it saved at step ``checkpoint``."""
    ref = str(resolve_ref(run, checkpoint))
    with opened(campaign) as db:
        return evaluate_gate(db, ref), list(db.warnings)
