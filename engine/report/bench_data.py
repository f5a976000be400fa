"""Everything the report's bench sections read, answered in one opening of the bench table.

The answers are the ones ``bench show``, ``bench diff`` and ``gate`` print (the same engine.bench
functions compute them), gathered once: a campaign of 20 runs needs some 40 diffs, and opening
the table once per answer would cost seconds. An answer that cannot be had (production without
bench results, a query that failed) is kept as the one line that says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.api import AnchorMatrix, BenchDiff, FlakyRow, GateResult, JudgedBench, PassRate
from engine.bench.answers import anchor_matrix
from engine.bench.compare import diff, flaky_rows, judged_summary, pass_rates
from engine.bench.db import BenchDB, opened
from engine.bench.gate import evaluate_gate
from engine.bench.store import bench_files
from engine.errors import TunedeckError
from engine.report.runs_order import ReportRun, ordered_refs
from engine.store.campaign import Campaign

Problem = str  # one line saying why an answer is missing


@dataclass
class BenchData:
    """The bench answers of a campaign; ``problem`` is set when the bench table could not be read at all."""

    refs: list[str] = field(default_factory=list)
    pass_rates: list[PassRate] = field(default_factory=list)
    flaky: list[FlakyRow] = field(default_factory=list)
    judged: dict[str, dict[str, JudgedBench]] = field(default_factory=dict)
    diffs: dict[tuple[str, str], BenchDiff | Problem] = field(default_factory=dict)
    gates: dict[str, GateResult | Problem] = field(default_factory=dict)
    anchors: AnchorMatrix | Problem | None = None
    baseline: str | None = None
    production: str | None = None
    warnings: list[str] = field(default_factory=list)
    problem: Problem | None = None

    def rate(self, ref: str, bench: str) -> PassRate | None:
        """A ref's pass rate on a bench, if it has one."""
        return next((r for r in self.pass_rates if r.run == ref and r.bench == bench), None)

    def benches(self) -> list[str]:
        """Every bench with results, sorted."""
        return sorted({r.bench for r in self.pass_rates})

    def is_judged(self, bench: str) -> bool:
        """Whether any ref has judged scores on ``bench``."""
        return any(bench in benches for benches in self.judged.values())


def _diff(db: BenchDB, ref: str, against: str, is_production: bool) -> BenchDiff | Problem:
    try:
        return diff(db, ref, against, baseline_is_production=is_production)
    except TunedeckError as exc:
        return str(exc)


def _gate(db: BenchDB, ref: str) -> GateResult | Problem:
    try:
        return evaluate_gate(db, ref)
    except TunedeckError as exc:
        return str(exc)


def _read(db: BenchDB, data: BenchData, campaign: Campaign, runs: list[ReportRun], production: str | None) -> None:
    """Fill ``data`` from an open bench table: the baseline is the first ref, in the runs' order, with results."""
    data.pass_rates = [PassRate(**record) for record in pass_rates(db)]
    data.flaky = [FlakyRow(**record) for record in flaky_rows(db)]
    judge = campaign.config.judge
    if judge is not None:
        summary = judged_summary(db, judge.weights)
        data.judged = {
            run: {bench: JudgedBench(**entry) for bench, entry in benches.items()} for run, benches in summary.items()
        }
    known = {r.run for r in data.pass_rates}
    data.refs = ordered_refs(runs, sorted(known))
    data.baseline = data.refs[0] if data.refs else None
    data.production = production if production in known else None
    for against in dict.fromkeys(side for side in (data.baseline, data.production) if side is not None):
        for ref in data.refs:
            if ref != against:
                data.diffs[(ref, against)] = _diff(db, ref, against, against == data.production)
    if campaign.config.gate is not None:
        data.gates = {ref: _gate(db, ref) for ref in data.refs}
    data.warnings = list(db.warnings)


def gather(campaign: Campaign, runs: list[ReportRun], production: str | None) -> BenchData:
    """The bench answers of every ref with results, in the runs' order; ``production``: its run or None."""
    data = BenchData()
    if not bench_files(campaign):
        return data
    try:
        with opened(campaign) as db:
            _read(db, data, campaign, runs, production)
    except TunedeckError as exc:
        data.problem = f"the bench table could not be read: {exc}"
        return data
    gate = campaign.config.gate
    if gate is not None and gate.anchors:
        try:
            plain = [ref for ref in data.refs if "@" not in ref]
            data.anchors, _ = anchor_matrix(campaign, plain or None)  # its skipped lines: in warnings already
        except TunedeckError as exc:
            data.anchors = f"the anchor table could not be read: {exc}"
    return data
