"""Judged benches compared: noise per category, coverage between two runs, and their steps.

Three Foundry lessons as behaviour. A category one side never evaluated (the probe set with no
position-discrimination prompt) is named and left out of the delta, not counted as 0. A delta
comes with a bootstrap interval and says when it lies inside the noise. A 300-step probe
compared with a full-length baseline is flagged: probe-vs-probe, not probe-vs-production.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from engine.api.bench import JudgedBenchDiff, JudgedDelta, StepCheck
from engine.bench.db import BenchDB
from engine.bench.noise import Spread, delta_interval, describe
from engine.bench.store import parse_ref
from engine.errors import TunedeckError
from engine.store.metrics import last_step

# (run, bench) -> category -> task_id -> overall of each evaluation
Evaluations = dict[tuple[str, str], dict[str, dict[str, list[float]]]]


def evaluations(db: BenchDB) -> Evaluations:
    """Every scored evaluation in the ``judged_rows`` table (materialised by ``judged_summary``)."""
    out: Evaluations = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run, bench, task_id, category, _sample, overall in db.query("judge_evaluations"):
        out[(run, bench)][category][task_id].append(float(overall))
    return out


def spread_fields(spread: Spread) -> dict[str, Any]:
    """A ``Spread`` as the noise fields of ``JudgedStats`` / ``JudgedBench``."""
    return {
        "mean": spread.mean,
        "ci_low": spread.low,
        "ci_high": spread.high,
        "evaluations": spread.evaluations,
        "spread": spread.spread,
    }


def add_noise(summary: dict[str, Any], found: Evaluations) -> None:
    """Put each bench's and category's mean, interval and spread into ``judged_summary``'s entries."""
    for run, benches in summary.items():
        for bench, entry in benches.items():
            by_category = found.get((run, bench), {})
            whole = [values for tasks in by_category.values() for values in tasks.values()]
            entry.update(spread_fields(describe(whole)))
            for category, stats in entry["categories"].items():
                stats.update(spread_fields(describe(list(by_category.get(category, {}).values()))))


def _delta(candidate: list[list[float]], baseline: list[list[float]]) -> JudgedDelta:
    cand, base = describe(candidate), describe(baseline)
    delta = None if cand.mean is None or base.mean is None else round(cand.mean - base.mean, 4)
    interval = delta_interval(candidate, baseline)
    low, high = interval if interval is not None else (None, None)
    inside = None if low is None or high is None else low <= 0.0 <= high
    return JudgedDelta(
        baseline=base.mean, candidate=cand.mean, delta=delta, ci_low=low, ci_high=high, inside_noise=inside
    )


def _coverage_warnings(bench: str, only_base: list[str], only_cand: list[str], refs: tuple[str, str]) -> list[str]:
    candidate, baseline = refs
    lines = []
    if only_base:
        lines.append(
            f"{bench}: {candidate} has no rows in {', '.join(only_base)} ({baseline} has): "
            "left out of the delta, not counted as 0"
        )
    if only_cand:
        lines.append(f"{bench}: {baseline} has no rows in {', '.join(only_cand)}: left out of the delta")
    return lines


def judged_diff(found: Evaluations, candidate: str, baseline: str) -> dict[str, JudgedBenchDiff]:
    """Per judged bench both refs have: the delta over shared categories, and per category."""
    out: dict[str, JudgedBenchDiff] = {}
    benches = sorted({b for r, b in found if r == candidate} & {b for r, b in found if r == baseline})
    for bench in benches:
        cand, base = found[(candidate, bench)], found[(baseline, bench)]
        shared = sorted(set(cand) & set(base))
        only_base, only_cand = sorted(set(base) - set(cand)), sorted(set(cand) - set(base))
        overall = _delta([v for c in shared for v in cand[c].values()], [v for c in shared for v in base[c].values()])
        out[bench] = JudgedBenchDiff(
            **overall.model_dump(),
            categories={c: _delta(list(cand[c].values()), list(base[c].values())) for c in shared},
            only_baseline_categories=only_base,
            only_candidate_categories=only_cand,
            warnings=_coverage_warnings(bench, only_base, only_cand, (candidate, baseline)),
        )
    return out


def step_of(db: BenchDB, ref: str) -> int | None:
    """The training step behind a ref: RUN@STEP's, a run's last logged step, or None if unknown."""
    parsed = parse_ref(ref)
    if parsed.step is not None:
        return parsed.step
    try:
        metrics = db.campaign.run(parsed.run).metrics
        logged = last_step(metrics) if metrics.is_file() else 0
        # A ledger run (imported, never trained here) has no metrics: its configured length stands in.
        return logged or db.campaign.load_run(parsed.run).train.max_steps
    except TunedeckError:
        return None


def at_step(baseline: str, step: int | None) -> str:
    """The baseline run's ref at ``step``: what a probe at that step is compared with."""
    return f"{parse_ref(baseline).run}@{step}"


def step_check(db: BenchDB, candidate: str, baseline: str) -> StepCheck:
    """Whether both sides trained as many steps; when not, which baseline ref would match."""
    cand, base = step_of(db, candidate), step_of(db, baseline)
    same = None if cand is None or base is None else cand == base
    note = None
    if same is False:
        note = f"unequal step counts: {candidate} at step {cand}, {baseline} at step {base}"
        match = at_step(baseline, cand)
        if match != candidate and db.query("run_has_rows", run=match):
            note += f"; {match} is the baseline at the same step (--same-step)"
    return StepCheck(candidate_step=cand, baseline_step=base, same=same, note=note)
