"""The bench questions the CLI and the service both answer, each computed here once.

Each function opens the bench table, answers, and closes it again (the cache file stays free
for other terminals). It returns the answer's model and the lines the table skipped while it
read the bench files (the CLI prints them on stderr, the service hands them to the TUI).
"""

from __future__ import annotations

from typing import Literal

from engine.api import (
    AnchorMatrix,
    BenchDiff,
    BenchRow,
    BenchRowsPage,
    BenchShow,
    DiffBenchTotals,
    DiffTotals,
    FlakyRow,
    GateResult,
    JudgedBench,
    PassRate,
)
from engine.bench.compare import (
    CLASSES,
    diff,
    flaky_rows,
    judged_deltas,
    judged_summary,
    pass_rates,
    require_results,
    resolve_baseline,
)
from engine.bench.db import BenchDB, opened
from engine.bench.gate import evaluate_gate
from engine.bench.judge_compare import at_step, step_check, step_of
from engine.bench.stats import mcnemar_exact
from engine.bench.store import bench_files, parse_ref, resolve_ref
from engine.errors import NotFoundError, TunedeckError
from engine.runs.costs import run_costs
from engine.store.campaign import Campaign

RowsSort = Literal["bench", "task_id", "klass"]
GateVerdict = Literal["passed", "failed"]


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
        warnings = list(db.warnings)
    shown = {parse_ref(r.run).run for r in show.pass_rates} | {parse_ref(run).run for run in show.judged}
    show.costs, problems = run_costs(campaign, sorted(shown))
    return show, warnings + problems


def bench_diff(
    campaign: Campaign,
    candidate: str,
    against: str | None = None,
    *,
    field: str = "candidate",
    same_step: bool = False,
) -> tuple[BenchDiff, list[str]]:
    """KEPT / LOST / GAINED / STILL FAILING of ``candidate`` against ``against`` (production when None).

    ``field`` names the candidate in an error (the CLI's argument is ``CANDIDATE``). ``same_step``
    compares with the baseline run's checkpoint at the candidate's step (``BASE@300`` for
    ``RUN@300``): a probe against a probe, never against a full-length run.
    """
    ref = str(parse_ref(candidate, field=field))
    baseline, is_production = resolve_baseline(campaign, against)
    with opened(campaign) as db:
        if same_step:
            baseline, is_production = _at_the_same_step(db, ref, baseline), False
        return diff(db, ref, baseline, baseline_is_production=is_production), list(db.warnings)


def _at_the_same_step(db: BenchDB, candidate: str, baseline: str) -> str:
    """The baseline run's ref at the candidate's step (probe vs probe), which must have been benched."""
    step = step_of(db, candidate)
    if step is None:
        raise NotFoundError(f"the step of {candidate!r} is not known: name it (RUN@STEP)", field="CANDIDATE")
    run, ref = parse_ref(baseline).run, at_step(baseline, step)
    if not db.query("run_has_rows", run=ref):
        raise NotFoundError(
            f"no bench results for {ref!r}, the baseline at {candidate}'s step: bench that checkpoint first "
            f"(tunedeck bench run {run} --checkpoint {step} --suite SUITE)",
            path=db.campaign.root / "bench" / ref,
        )
    return ref


def gate(campaign: Campaign, run: str, checkpoint: int | None = None) -> tuple[GateResult, list[str]]:
    """campaign.toml's [gate] applied to a run, or to the adapter it saved at step ``checkpoint``."""
    ref = str(resolve_ref(run, checkpoint))
    with opened(campaign) as db:
        return evaluate_gate(db, ref), list(db.warnings)


def bench_rows(
    campaign: Campaign,
    candidate: str,
    against: str | None = None,
    *,
    klasses: list[str] | None = None,
    benches: list[str] | None = None,
    q: str | None = None,
    sort: RowsSort = "bench",
    offset: int = 0,
    limit: int = 100,
) -> tuple[BenchRowsPage, list[str]]:
    """One page of the diff's rows, filtered and sorted in DuckDB (queries/diff_rows*.sql)."""
    ref = str(parse_ref(candidate))
    baseline, _ = resolve_baseline(campaign, against)
    with opened(campaign) as db:
        for side in (ref, baseline):
            require_results(db, side)
        db.materialise(
            "diff_rows_filtered", "diff_rows",
            candidate=ref, baseline=baseline, klasses=klasses, benches=benches, q=q or None,
        )  # fmt: skip
        (total,), *_ = db.query("diff_rows_total")
        rows = [BenchRow(**record) for record in db.records("diff_rows_page", sort=sort, limit=limit, offset=offset)]
        page = BenchRowsPage(candidate=ref, baseline=baseline, total=total, offset=offset, limit=limit, rows=rows)
        return page, list(db.warnings)


def anchor_matrix(
    campaign: Campaign, runs: list[str] | None = None, rows: list[str] | None = None
) -> tuple[AnchorMatrix, list[str]]:
    """The gate's anchors (or ``rows``: task ids, or ``bench:task_id``) down, runs across.

    A cell is the run's first-sample verdict in any bench holding the task id (an anchor passes
    if it passes in any bench, as the gate says), None when the run never evaluated it. ``rows``
    given wins over the gate's anchors; ``runs`` defaults to every run with bench results (refs
    without ``@STEP``), sorted as the campaign lists its runs.
    """
    gate = campaign.config.gate
    names = list(dict.fromkeys(rows or (gate.anchors if gate else [])))
    if not names:
        raise TunedeckError("no rows: campaign.toml has no [gate] anchors, so name them with rows=", field="rows")
    # Only a named row may say its bench: a gate anchor is a task id, whatever it contains.
    split = [name.partition(":") if rows and ":" in name else (None, "", name) for name in names]
    benches, tasks = [bench for bench, _, _ in split], [task for _, _, task in split]
    with opened(campaign) as db:
        refs = [str(parse_ref(run, field="runs")) for run in runs] if runs else None
        if refs is None:
            refs = [ref for (ref,) in db.query("bench_refs") if "@" not in ref]
        cells: list[list[bool | None]] = [[None] * len(refs) for _ in names]
        if refs:
            for row, col, passed in db.query("anchor_matrix", runs=refs, tasks=tasks, benches=benches):
                cells[row - 1][col - 1] = passed
        return AnchorMatrix(runs=refs, rows=names, cells=cells), list(db.warnings)


def run_bench_facts(campaign: Campaign, runs: list[str]) -> dict[str, tuple[dict[str, float], GateVerdict | None]]:
    """Per run with bench results of its own ref: pass rate per bench, and the gate's verdict.

    The verdict is ``"passed"`` / ``"failed"`` when campaign.toml has a [gate], else None; None too
    when the gate cannot be applied now (production has no bench results). Runs without results
    are left out. One opening of the bench table for all of them.
    """
    if not bench_files(campaign):
        return {}
    facts: dict[str, tuple[dict[str, float], GateVerdict | None]] = {}
    with opened(campaign) as db:
        for record in pass_rates(db, runs):
            facts.setdefault(record["run"], ({}, None))[0][record["bench"]] = float(record["pass_rate"])
        if campaign.config.gate is not None:
            for run, (rates, _) in facts.items():
                try:
                    verdict = evaluate_gate(db, run, campaign.config.gate)
                except TunedeckError:
                    continue
                facts[run] = (rates, "passed" if verdict.passed else "failed")
    return facts


def diff_totals(campaign: Campaign, candidate: str, against: str | None) -> DiffTotals:
    """``GET /bench/totals``: bench_diff's per-bench totals and p-value, counted in DuckDB (queries/diff_totals.sql),
    without the row keys (8 MB on a 500k-row diff)."""
    ref = str(parse_ref(candidate))
    baseline, is_production = resolve_baseline(campaign, against)
    with opened(campaign) as db:
        for side in (ref, baseline):
            require_results(db, side)
        db.materialise("diff_joined", "diff_joined", candidate=ref, baseline=baseline)
        benches = {record.pop("bench"): DiffBenchTotals(**record) for record in db.records("diff_totals")}
        judged, steps = judged_deltas(db, ref, baseline), step_check(db, ref, baseline)
    count = {name: sum(getattr(totals, name) for totals in benches.values()) for name in CLASSES}
    shared = any(count.values())  # as bench_diff: no test when the two runs share no row
    p_value = mcnemar_exact(count["lost"], count["gained"]) if shared else None
    return DiffTotals(
        candidate=ref, baseline=baseline, baseline_is_production=is_production, p_value=p_value, benches=benches,
        judged=judged, steps=steps,
    )  # fmt: skip
