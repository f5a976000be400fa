"""Comparing runs row by row: pass rates, the KEPT/LOST/GAINED diff, flaky rows, judged scores.

Everything is a query in ``queries/*.sql`` over the ``bench_rows`` table (engine.bench.db);
this module turns results into the shapes the CLI, the service and the TUI print.
"""

from __future__ import annotations

from typing import Any

from engine.api import BenchDiff, DiffBenchTotals
from engine.bench.db import BenchDB
from engine.bench.judge_compare import add_noise, evaluations, judged_diff, step_check
from engine.bench.stats import mcnemar_exact
from engine.bench.store import parse_ref
from engine.errors import NotFoundError
from engine.store.campaign import Campaign
from engine.store.numbers import is_number
from engine.store.production import production_run

CLASSES = ("kept", "lost", "gained", "still_failing")


def resolve_baseline(campaign: Campaign, against: str | None) -> tuple[str, bool]:
    """The baseline ref to compare with (production by default) and whether it is production."""
    if against is None or against == "production":
        return production_run(campaign), True
    return str(parse_ref(against, field="--against")), False


def require_results(db: BenchDB, ref: str) -> None:
    """A clear error when a ref has no bench rows at all (a typo, or not benched yet)."""
    if not db.query("run_has_rows", run=ref):
        raise NotFoundError(
            f"no bench results for {ref!r}: import some with 'tunedeck bench import' or run 'tunedeck bench run'",
            path=db.campaign.root / "bench" / ref,
        )


def diff(db: BenchDB, candidate: str, baseline: str, *, baseline_is_production: bool = False) -> BenchDiff:
    """Classify every (bench, task_id) of ``candidate`` against ``baseline``."""
    for ref in (candidate, baseline):
        require_results(db, ref)
    rows: dict[str, list[str]] = {name: [] for name in (*CLASSES, "only_candidate", "only_baseline")}
    flaky: list[str] = []
    # The two sides joined once, into a temp table both queries read.
    db.materialise("diff_joined", "diff_joined", candidate=candidate, baseline=baseline)
    for key, klass, is_flaky in db.query("diff"):
        rows[klass].append(key)
        if is_flaky:
            flaky.append(key)
    benches: dict[str, DiffBenchTotals] = {}
    for record in db.records("diff_totals"):
        bench = record.pop("bench")
        benches[bench] = DiffBenchTotals(**record)
    # Exact McNemar on the discordant rows; None when the runs share no row.
    shared = any(rows[name] for name in CLASSES)
    # Not validated again: the row keys are strings from SQL, and checking 160k of them would
    # cost more than the diff itself (the per-bench totals above are validated).
    return BenchDiff.model_construct(
        candidate=candidate,
        baseline=baseline,
        baseline_is_production=baseline_is_production,
        kept=rows["kept"],
        lost=rows["lost"],
        gained=rows["gained"],
        still_failing=rows["still_failing"],
        flaky=flaky,
        only_candidate=rows["only_candidate"],
        only_baseline=rows["only_baseline"],
        p_value=mcnemar_exact(len(rows["lost"]), len(rows["gained"])) if shared else None,
        benches=benches,
        judged=judged_deltas(db, candidate, baseline),
        steps=step_check(db, candidate, baseline),
    )


def judged_deltas(db: BenchDB, candidate: str, baseline: str) -> dict[str, Any]:
    """Judged benches of both sides compared (coverage, noise), when campaign.toml declares [judge]."""
    judge = db.campaign.config.judge
    if judge is None:
        return {}
    db.materialise("judged_rows", "judge_rows", **_judge_params(judge.weights, [candidate, baseline]))
    return judged_diff(evaluations(db), candidate, baseline)


def pass_rates(db: BenchDB, refs: list[str] | None = None) -> list[dict[str, Any]]:
    """Pass rate per run and bench (all runs when ``refs`` is None)."""
    return db.records("pass_rates", runs=refs)


def flaky_rows(db: BenchDB, refs: list[str] | None = None) -> list[dict[str, Any]]:
    return db.records("flaky", runs=refs)


def _judge_params(weights: dict[str, float], refs: list[str] | None) -> dict[str, Any]:
    """The parameters of queries/judge_rows.sql: category names and weights, two lists in one order."""
    names = sorted(weights)
    return {"categories": names, "weights": [float(weights[name]) for name in names], "runs": refs}


def judged_rows(db: BenchDB, weights: dict[str, float], refs: list[str] | None = None) -> list[dict[str, Any]]:
    """Each judged row's weighted overall (None when a declared category is missing)."""
    records = db.records("judge_rows", **_judge_params(weights, refs))
    return [{**record, "scores": dict(record["scores"])} for record in records]


def judged_summary(db: BenchDB, weights: dict[str, float], refs: list[str] | None = None) -> dict[str, Any]:
    """Per run and bench: mean weighted overall, per prompt category, and per score category."""
    # A view cannot take parameters: the weights are bound once into a temp table both queries read.
    db.materialise("judged_rows", "judge_rows", **_judge_params(weights, refs))
    out: dict[str, Any] = {}
    for record in db.records("judge_summary"):
        entry = out.setdefault(record["run"], {}).setdefault(record["bench"], {"categories": {}, "scores": {}})
        stats = {"rows": record["rows"], "overall": record["overall"], "incomplete": record["incomplete"]}
        if record["whole"]:
            entry.update(stats)
        else:
            entry["categories"][record["category"] or "(none)"] = stats
    for record in db.records("judge_categories"):
        entry = out.setdefault(record["run"], {}).setdefault(record["bench"], {"categories": {}, "scores": {}})
        entry["scores"][record["name"]] = record["mean"]
    add_noise(out, evaluations(db))  # each mean's bootstrap interval and within-prompt spread
    return out


def eval_rewards(db: BenchDB, refs: list[str], baseline: str | None = None) -> list[dict[str, Any]]:
    """Per-task eval rewards (``eval/<task>`` metrics) of runs, with deltas against ``baseline``.

    Metrics are read with the tolerant reader (torn tail, resumed steps merged by (step,
    metric)) and handed to DuckDB as one table, so the SQL sees exactly what every other
    screen sees.
    """
    from engine.store.metrics import read_metrics

    runs: list[str] = []
    steps: list[int] = []
    metrics: list[str] = []
    values: list[float] = []
    for ref in dict.fromkeys([*refs, *([baseline] if baseline else [])]):
        path = db.campaign.run(parse_ref(ref).run).metrics
        for record in read_metrics(path) if path.is_file() else []:
            for key, value in record.items():
                if key.startswith("eval/") and is_number(value):
                    runs.append(ref)
                    steps.append(record["step"])
                    metrics.append(key)
                    values.append(float(value))
    db.materialise("run_metrics", "run_metrics", runs=runs, steps=steps, metrics=metrics, values=values)
    return db.records("eval_rewards", baseline=baseline)
