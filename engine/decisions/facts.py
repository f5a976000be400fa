"""Facts evaluated on a run: metrics from runs/<run>/metrics.jsonl, bench answers, the gate, run.toml.

Metrics are read merged by (step, metric), later values winning (engine.store.metrics); only
numbers count (NaN and ±inf included, null and text not). The bench facts ask
engine.bench.answers, exactly what ``tunedeck bench show|diff`` and ``gate`` answer, once per
walk each. A fact that cannot be known — a metric never logged, a bench never run, no
production, no run.toml — is *unknown* with the reason; it never takes a default value.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.api import BenchDiff, BenchShow, GateResult
from engine.bench import answers
from engine.decisions import fact_kinds as k
from engine.errors import TunedeckError
from engine.runs.watch import evaluate
from engine.store.campaign import Campaign
from engine.store.metrics import read_metrics
from engine.store.numbers import as_number
from engine.store.watch_rules import Plateau, WatchRule

MAX_LISTED = 10  # rows named in a fact's detail


@dataclass(frozen=True)
class Known:
    """A fact's value, or (``known`` False) why there is none."""

    known: bool
    value: Any = None
    detail: str | None = None


def unknown(why: str) -> Known:
    """A fact that cannot be known, with the reason."""
    return Known(False, None, why)


def format_value(value: Any) -> str:
    """A value as reasons quote it: 0.41, 2e-06, yes/no, {a: 15, b: 15}."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {format_value(v)}" for key, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def _listed(rows: list[str]) -> str:
    more = f" and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else ""
    return ", ".join(rows[:MAX_LISTED]) + more


@dataclass
class FactContext:
    """One walk's view of a campaign: the decided run and caches, so each file or query is read once."""

    campaign: Campaign
    run: str
    _metrics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def metrics(self, run: str) -> list[dict[str, Any]]:
        """The run's merged metric records (empty when it logged none)."""
        if run not in self._metrics:
            self._metrics[run] = read_metrics(self.campaign.run(run).metrics)
        return self._metrics[run]

    def series(self, run: str, metric: str) -> list[tuple[int, float]]:
        """(step, value) of one metric's numeric values, by step."""
        return [(r["step"], v) for r in self.metrics(run) if (v := as_number(r.get(metric))) is not None]

    def memo(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """``compute()`` once per key; a TunedeckError is remembered and raised again."""
        if key not in self._memo:
            try:
                self._memo[key] = compute()
            except TunedeckError as exc:
                self._memo[key] = exc
        value = self._memo[key]
        if isinstance(value, TunedeckError):
            raise value
        return value

    def show(self, run: str) -> BenchShow:
        return self.memo(("show", run), lambda: answers.bench_show(self.campaign, [run])[0])

    def diff(self, run: str, against: str) -> BenchDiff:
        return self.memo(("diff", run, against), lambda: answers.bench_diff(self.campaign, run, against)[0])

    def gate(self, run: str) -> GateResult:
        return self.memo(("gate", run), lambda: answers.gate(self.campaign, run)[0])

    def anchors_passed(self, runs: tuple[str, ...]) -> dict[str, int | None]:
        """Per run, the gate anchors it passes (None: it evaluated none of them)."""

        def count() -> dict[str, int | None]:
            matrix = answers.anchor_matrix(self.campaign, list(runs))[0]
            columns = [[row[i] for row in matrix.cells] for i in range(len(runs))]
            return {
                run: None if all(c is None for c in col) else sum(c is True for c in col)
                for run, col in zip(runs, columns, strict=True)
            }

        return dict(self.memo(("anchors", runs), count))


# -- metrics -------------------------------------------------------------------------------


def _never_logged(metric: str, run: str) -> Known:
    return unknown(f"{metric} was never logged for {run}")


def _value_at(ctx: FactContext, run: str, metric: str, step: int | None) -> Known:
    points = ctx.series(run, metric)
    if not points:
        return _never_logged(metric, run)
    if step is None:
        last_step, value = points[-1]
        return Known(True, value, f"logged at step {last_step}")
    index = bisect_right([s for s, _ in points], step) - 1
    if index < 0:
        return unknown(f"{metric} was first logged at step {points[0][0]}, after step {step}")
    at, value = points[index]
    return Known(True, value, None if at == step else f"logged at step {at}")


def _metric_at(spec: k.MetricAt, ctx: FactContext, run: str) -> Known:
    return _value_at(ctx, run, spec.metric, spec.step)


def _metric_last(spec: k.MetricLast, ctx: FactContext, run: str) -> Known:
    return _value_at(ctx, run, spec.metric, None)


def _extreme(ctx: FactContext, run: str, metric: str, pick: Callable[..., tuple[int, float]]) -> Known:
    points = [(s, v) for s, v in ctx.series(run, metric) if not math.isnan(v)]
    if not points:
        return _never_logged(metric, run)
    step, value = pick(points, key=lambda p: p[1])  # the first step of a tie: max/min keep the first
    return Known(True, value, f"at step {step}")


def _metric_max(spec: k.MetricMax, ctx: FactContext, run: str) -> Known:
    return _extreme(ctx, run, spec.metric, max)


def _metric_min(spec: k.MetricMin, ctx: FactContext, run: str) -> Known:
    return _extreme(ctx, run, spec.metric, min)


def _metric_step_of_max(spec: k.MetricStepOfMax, ctx: FactContext, run: str) -> Known:
    peak = _extreme(ctx, run, spec.metric, max)
    if not peak.known:
        return peak
    step = int(str(peak.detail).removeprefix("at step "))
    return Known(True, step, f"{spec.metric} = {format_value(peak.value)} there")


def _plateau(spec: k.PlateauFact, ctx: FactContext, run: str) -> Known:
    """The watch rule's plateau over the run's metrics: true once it would have fired."""
    rule = WatchRule(
        name="plateau", metric=spec.metric, plateau=Plateau(window=spec.window, min_delta=spec.min_delta),
        before_step=spec.before_step, after_step=spec.after_step, action="warn",
    )  # fmt: skip
    points = [(s, v) for s, v in ctx.series(run, spec.metric) if rule.in_window(s)]
    if not points:
        return _never_logged(spec.metric + (f" before step {spec.before_step}" if spec.before_step else ""), run)
    if points[-1][0] - points[0][0] < spec.window:
        return unknown(
            f"{spec.metric} logged from step {points[0][0]} to {points[-1][0]} only: "
            f"too short to tell a plateau over {spec.window} steps"
        )
    alerts = evaluate([rule], ctx.metrics(run))
    if alerts:
        first = alerts[0]
        return Known(True, True, f"from step {first.first_step}, where {spec.metric} = {format_value(first.value)}")
    return Known(True, False, f"logged up to step {points[-1][0]}")


def _eval_reward(spec: k.EvalReward, ctx: FactContext, run: str) -> Known:
    return _value_at(ctx, run, spec.metric, spec.step)


def _lowest_of(spec: k.LowestOf, ctx: FactContext, run: str) -> Known:
    values: dict[str, float] = {}
    for metric in spec.metrics:
        got = _value_at(ctx, run, metric, spec.step)
        if not got.known:
            return got
        values[metric] = got.value
    ranked = sorted(values.items(), key=lambda item: item[1])
    listing = ", ".join(f"{m} {format_value(v)}" for m, v in values.items())
    if ranked[0][1] == ranked[1][1] or math.isnan(ranked[0][1]):
        return unknown(f"no single lowest: {listing}")
    return Known(True, ranked[0][0], listing)


# -- bench ---------------------------------------------------------------------------------


def _pass_rate(spec: k.PassRate, ctx: FactContext, run: str) -> Known:
    for rate in ctx.show(run).pass_rates:
        if rate.run == run and rate.bench == spec.bench:
            return Known(True, rate.pass_rate, f"{rate.passed}/{rate.total}")
    return unknown(f"no {spec.bench} results for {run}")


def _pass_rate_delta(spec: k.PassRateDelta, ctx: FactContext, run: str) -> Known:
    compared = ctx.diff(run, spec.against)
    totals = compared.benches.get(spec.bench)
    if totals is None or totals.delta is None:
        return unknown(f"{spec.bench} is not in both {run} and {compared.baseline}")
    return Known(
        True,
        totals.delta,
        f"{totals.candidate_passed}/{totals.candidate_total} against {totals.baseline_passed}/"
        f"{totals.baseline_total} of {compared.baseline}",
    )


def _diff_count(spec: k.DiffCount, ctx: FactContext, run: str) -> Known:
    compared = ctx.diff(run, spec.against)
    rows: list[str] = list(getattr(compared, spec.row_class))
    if spec.exclude_flaky:
        flaky = set(compared.flaky)
        rows = [row for row in rows if row not in flaky]
    return Known(True, len(rows), f"against {compared.baseline}" + (f": {_listed(rows)}" if rows else ""))


def _matches(row: str, names: list[str]) -> bool:
    """A diff row ``bench:task_id`` matches a name given as ``bench:task_id`` or as a task id alone."""
    return row in names or row.partition(":")[2] in names


def _rows_lost(spec: k.RowsLost, ctx: FactContext, run: str) -> Known:
    compared = ctx.diff(run, spec.against)
    lost = [row for row in compared.lost if _matches(row, spec.rows)]
    return Known(True, bool(lost), f"against {compared.baseline}" + (f": lost {_listed(lost)}" if lost else ""))


def _flaky_rows(spec: k.FlakyRows, ctx: FactContext, run: str) -> Known:
    rows = [f"{row.bench}:{row.task_id}" for row in ctx.show(run).flaky if row.run == run]
    if not any(rate.run == run for rate in ctx.show(run).pass_rates):
        return unknown(f"no bench results for {run}")
    return Known(True, len(rows), _listed(rows) if rows else None)


def _gate(spec: k.GateFact, ctx: FactContext, run: str) -> Known:
    result = ctx.gate(run)
    return Known(True, result.passed, "; ".join(result.reasons) if result.reasons else None)


def _anchors_passed(spec: k.AnchorsPassed, ctx: FactContext, run: str) -> Known:
    runs = tuple(spec.runs or [run])
    counts = ctx.anchors_passed(runs)
    missing = [name for name, count in counts.items() if count is None]
    if missing:
        return unknown(f"no anchor results for {', '.join(missing)}")
    total = len(ctx.campaign.config.gate.anchors) if ctx.campaign.config.gate else 0
    if spec.runs is None:
        return Known(True, counts[run], f"of {total}")
    return Known(True, dict(counts), f"of {total} anchors")


def _anchors_peak(spec: k.AnchorsPeak, ctx: FactContext, run: str) -> Known:
    runs = tuple(dict.fromkeys(name for names in spec.levers.values() for name in names))
    counts = ctx.anchors_passed(runs)
    missing = [name for name, count in counts.items() if count is None]
    if missing:
        return unknown(f"no anchor results for {', '.join(missing)}")
    peaks: dict[str, int] = {}
    where: list[str] = []
    for lever, names in spec.levers.items():
        best = max(names, key=lambda name: counts[name] or 0)
        peaks[lever] = int(counts[best] or 0)
        where.append(f"{lever} {peaks[lever]} ({best})")
    return Known(True, peaks, ", ".join(where))


def _config(spec: k.ConfigValue, ctx: FactContext, run: str) -> Known:
    config = ctx.memo(("config", run), lambda: ctx.campaign.load_run(run)).model_dump(by_alias=True)
    value: Any = config
    for part in spec.key.split("."):
        if not isinstance(value, dict) or part not in value:
            return unknown(f"{spec.key} is not a setting of run.toml")
        value = value[part]
    if value is None:
        return unknown(f"{spec.key} is not set in runs/{run}/run.toml")
    return Known(True, value, None)


_EVALUATORS: dict[type[k.FactSpec], Callable[[Any, FactContext, str], Known]] = {
    k.MetricAt: _metric_at,
    k.MetricLast: _metric_last,
    k.MetricMax: _metric_max,
    k.MetricMin: _metric_min,
    k.MetricStepOfMax: _metric_step_of_max,
    k.PlateauFact: _plateau,
    k.EvalReward: _eval_reward,
    k.LowestOf: _lowest_of,
    k.PassRate: _pass_rate,
    k.PassRateDelta: _pass_rate_delta,
    k.DiffCount: _diff_count,
    k.RowsLost: _rows_lost,
    k.FlakyRows: _flaky_rows,
    k.GateFact: _gate,
    k.AnchorsPassed: _anchors_passed,
    k.AnchorsPeak: _anchors_peak,
    k.ConfigValue: _config,
}


def evaluate_fact(spec: k.FactSpec, ctx: FactContext) -> Known:
    """The fact's value on its run (the decided one unless it names another), or why it is unknown."""
    run = spec.run or ctx.run
    try:
        return _EVALUATORS[type(spec)](spec, ctx, run)
    except TunedeckError as exc:  # no bench results, no production, no [gate], no run.toml ...
        return unknown(exc.message)
