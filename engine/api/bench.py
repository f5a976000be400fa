"""Bench results: imports, suite runs, pass rates, the row-by-row diff, the gate and the harvest.

Rows are named ``"<bench>:<task_id>"``; a ref is ``RUN`` or ``RUN@STEP`` (a checkpoint's adapter).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from engine.api.base import ApiModel
from engine.api.runs import RunCost


class BenchTotals(ApiModel):
    """``total``: distinct task ids; ``passed``: tasks whose first (lowest) sample passed."""

    total: int
    passed: int


class BenchImportSummary(ApiModel):
    """What one ``tunedeck bench import`` did; ``reasons`` has one ``file:line: field: why`` per skipped line."""

    run: str
    format: str
    path: Path
    rows: int
    benches: dict[str, BenchTotals]
    skipped: int
    reasons: list[str]
    files: list[Path]
    replaced: dict[str, int] = Field(
        description="rows each bench held before this import replaced them (0: the bench is new)"
    )


class BenchRunSummary(ApiModel):
    """What ``tunedeck bench run --json`` prints: the suite's totals per bench for the ref it ran."""

    run: str
    rows: int = Field(description="scored completions (suite rows x samples)")
    benches: dict[str, BenchTotals]
    seconds: float
    model: str = Field(description="which model generated: merged, adapter, checkpoint or base")
    samples: int


class BenchJudgeSummary(ApiModel):
    """What ``tunedeck bench judge --json`` prints: generation, judging, errors, tokens and cost."""

    run: str
    rows: int = Field(description="judgements (suite rows x samples x repeats)")
    judged: int = Field(description="judgements with every component scored")
    errors: int = Field(description="judge errors: left out of every mean, never scored 0")
    rejudged: int = Field(description="answers judged again with a larger max_tokens after a parse failure")
    resumed: int = Field(description="judgements taken from an interrupted run instead of paid again")
    requests: int = Field(description="HTTP requests sent to the judge this time (retries included)")
    benches: dict[str, BenchTotals] = Field(description="passed: judged without a critical failure")
    tokens_in: int
    tokens_out: int
    cost_usd: float | None = Field(description="None unless [judge] declares both prices")
    generation_s: float
    judging_s: float
    seconds: float
    model: str = Field(description="which model generated: merged, adapter, checkpoint or base")
    judge_model: str
    rubric_sha256: str
    samples: int
    repeats: int


class PassRate(ApiModel):
    """One run's pass rate on one bench."""

    run: str
    bench: str
    total: int
    passed: int
    pass_rate: float
    flaky: int
    rows: int = Field(description="rows on file, every sample counted")
    latency_ms: float | None


class FlakyRow(ApiModel):
    """A task whose repeated samples disagree."""

    run: str
    bench: str
    task_id: str
    samples: int
    samples_passed: int


class JudgedStats(ApiModel):
    """Mean weighted overall over first samples; ``incomplete`` rows lack a declared score category.

    ``mean`` averages every evaluation (samples and repeats) per prompt first, then over prompts;
    ``ci_low``/``ci_high`` are its 95% bootstrap interval (engine.bench.noise).
    """

    rows: int
    overall: float | None
    incomplete: int
    mean: float | None
    ci_low: float | None = Field(description="None with fewer than two prompts")
    ci_high: float | None
    evaluations: int = Field(description="scored evaluations, every sample and repeat counted")
    spread: float | None = Field(description="mean within-prompt std deviation; None with one evaluation each")


class JudgedBench(ApiModel):
    """A judged bench of one run: per prompt category, per score category, and over the whole bench."""

    categories: dict[str, JudgedStats]
    scores: dict[str, float | None]
    rows: int
    overall: float | None
    incomplete: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    evaluations: int
    spread: float | None


class BenchShow(ApiModel):
    """``tunedeck bench show --json``: pass rates, flaky rows and judged scores (run -> bench -> scores)."""

    pass_rates: list[PassRate]
    flaky: list[FlakyRow]
    judged: dict[str, dict[str, JudgedBench]]
    costs: dict[str, RunCost] = Field(
        default_factory=dict,
        description="run -> its cost ledger (judge spend, generation and judging time, declared [cost]), "
        "for the runs shown that have one",
    )


class BenchShowWithWarnings(BenchShow):
    """``GET /bench``: the same, plus the lines the CLI prints on stderr (bench files it skipped)."""

    warnings: list[str]


class DiffBenchTotals(ApiModel):
    """One bench of a diff: each side's totals, the rows per class, and the pass-rate delta."""

    baseline_total: int
    baseline_passed: int
    candidate_total: int
    candidate_passed: int
    kept: int
    lost: int
    gained: int
    still_failing: int
    only_candidate: int
    only_baseline: int
    flaky: int
    delta: float | None = Field(description="candidate pass rate minus baseline pass rate")
    baseline_latency_ms: float | None
    candidate_latency_ms: float | None


class JudgedDelta(ApiModel):
    """A judged mean of the candidate against the baseline's, and whether it lies inside the noise."""

    baseline: float | None
    candidate: float | None
    delta: float | None
    ci_low: float | None = Field(description="95% bootstrap interval of the delta; None under two prompts a side")
    ci_high: float | None
    inside_noise: bool | None = Field(description="the interval holds 0: this delta is not a measured effect")


class JudgedBenchDiff(JudgedDelta):
    """One judged bench of a diff: over the categories both sides cover, and per category.

    A category only one side covers is named and left out of the overall delta, never read as 0.
    """

    categories: dict[str, JudgedDelta]
    only_baseline_categories: list[str]
    only_candidate_categories: list[str]
    warnings: list[str]


class StepCheck(ApiModel):
    """The training steps behind the two sides: a 300-step probe is compared with a 300-step baseline."""

    candidate_step: int | None = Field(description="RUN@STEP's step, a run's last logged step, or None if unknown")
    baseline_step: int | None
    same: bool | None = Field(description="None when a step is unknown")
    note: str | None


class BenchDiff(ApiModel):
    """``tunedeck bench diff --json``: every row of the candidate classified against the baseline."""

    candidate: str
    baseline: str
    baseline_is_production: bool
    kept: list[str]
    lost: list[str]
    gained: list[str]
    still_failing: list[str]
    flaky: list[str] = Field(description="rows of any class whose samples disagree")
    only_candidate: list[str]
    only_baseline: list[str]
    p_value: float | None = Field(description="exact McNemar on lost vs gained; None when no row is shared")
    benches: dict[str, DiffBenchTotals]
    judged: dict[str, JudgedBenchDiff] = Field(description="judged benches both sides have ([judge] weights)")
    steps: StepCheck


class GateAnchors(ApiModel):
    """The gate's anchors: task ids that must pass; ``missing`` ones were not evaluated at all."""

    total: int
    passed: int
    failed: list[str]
    missing: list[str]


class GatePassRate(ApiModel):
    """A bench's pass rate against its ``min_pass_rate``."""

    total: int
    passed: int
    pass_rate: float
    min: float


class GateResult(ApiModel):
    """``tunedeck gate --json``: whether the ref passes campaign.toml's [gate], and why not."""

    run: str
    passed: bool
    anchors: GateAnchors
    lost: list[str] = Field(description="rows lost against production")
    production: str | None
    pass_rates: dict[str, GatePassRate]
    reasons: list[str] = Field(description="one line per failed rule; empty when the gate passes")
    notes: list[str]


class HarvestSummary(ApiModel):
    """``tunedeck dataset harvest --json``: what the next training set holds."""

    out: Path
    rows: int
    poison: int = Field(description="fresh failures joined with a reference solution")
    anchors: int = Field(description="rows the run passes, kept as positive contrast")
    failed_without_ref: list[str]
    skipped_refs: list[str]
