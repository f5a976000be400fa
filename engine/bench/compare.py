"""Comparing runs row by row: pass rates, the KEPT/LOST/GAINED diff, flaky rows, judged scores.

Everything is a query in ``queries/*.sql`` over the ``bench_rows`` table (engine.bench.db);
this module turns results into the shapes the CLI, the service and the TUI print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import queries
from engine.bench.db import BenchDB
from engine.bench.stats import mcnemar_exact
from engine.bench.store import parse_ref
from engine.errors import NotFoundError
from engine.store.campaign import Campaign
from engine.store.production import production_run

CLASSES = ("kept", "lost", "gained", "still_failing")


def resolve_baseline(campaign: Campaign, against: str | None) -> tuple[str, bool]:
    """The baseline ref to compare with (production by default) and whether it is production."""
    if against is None or against == "production":
        return production_run(campaign), True
    return str(parse_ref(against, field="--against")), False


def require_results(db: BenchDB, ref: str) -> None:
    """A clear error when a ref has no bench rows at all (a typo, or not benched yet)."""
    if not db.con.execute("SELECT 1 FROM bench_rows WHERE run = ? LIMIT 1", [ref]).fetchall():
        raise NotFoundError(
            f"no bench results for {ref!r}: import some with 'tunedeck bench import' or run 'tunedeck bench run'",
            path=db.campaign.root / "bench" / ref,
        )


@dataclass
class Diff:
    """The diff of a candidate against a baseline."""

    candidate: str
    baseline: str
    baseline_is_production: bool
    rows: dict[str, list[str]] = field(default_factory=dict)  # class -> ["bench:task_id", ...]
    flaky: list[str] = field(default_factory=list)
    benches: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def p_value(self) -> float | None:
        """Exact McNemar on the discordant rows; None when the runs share no row."""
        if not any(self.rows.get(name) for name in CLASSES):
            return None
        return mcnemar_exact(len(self.rows["lost"]), len(self.rows["gained"]))

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "baseline": self.baseline,
            "baseline_is_production": self.baseline_is_production,
            **{name: self.rows.get(name, []) for name in CLASSES},
            "flaky": self.flaky,
            "only_candidate": self.rows.get("only_candidate", []),
            "only_baseline": self.rows.get("only_baseline", []),
            "p_value": self.p_value,
            "benches": self.benches,
        }


def diff(db: BenchDB, candidate: str, baseline: str, *, baseline_is_production: bool = False) -> Diff:
    """Classify every (bench, task_id) of ``candidate`` against ``baseline``."""
    for ref in (candidate, baseline):
        require_results(db, ref)
    result = Diff(candidate, baseline, baseline_is_production)
    result.rows = {name: [] for name in (*CLASSES, "only_candidate", "only_baseline")}
    # The two sides joined once, into a temp table both queries read.
    db.con.execute("CREATE OR REPLACE TEMP TABLE diff_joined AS " + queries.load("diff_joined"),
                   {"candidate": candidate, "baseline": baseline})  # fmt: skip
    rows, flaky = result.rows, result.flaky
    for key, klass, is_flaky in db.query("diff"):
        rows[klass].append(key)
        if is_flaky:
            flaky.append(key)
    for record in db.records("diff_totals"):
        bench = record.pop("bench")
        result.benches[bench] = record
    return result


def pass_rates(db: BenchDB, refs: list[str] | None = None) -> list[dict[str, Any]]:
    """Pass rate per run and bench (all runs when ``refs`` is None)."""
    return db.records("pass_rates", runs=refs)


def flaky_rows(db: BenchDB, refs: list[str] | None = None) -> list[dict[str, Any]]:
    return db.records("flaky", runs=refs)


def _judged_view(db: BenchDB, weights: dict[str, float], refs: list[str] | None) -> None:
    import queries

    names = sorted(weights)
    # A view cannot take parameters: the weights are bound once into a temp table it reads.
    db.con.execute("CREATE OR REPLACE TEMP TABLE judged_rows AS " + queries.load("judge_rows"), {
        "categories": names,
        "weights": [float(weights[name]) for name in names],
        "runs": refs,
    })  # fmt: skip


def judged_rows(db: BenchDB, weights: dict[str, float], refs: list[str] | None = None) -> list[dict[str, Any]]:
    """Each judged row's weighted overall (None when a declared category is missing)."""
    _judged_view(db, weights, refs)
    cursor = db.con.execute("SELECT * FROM judged_rows")
    columns = [d[0] for d in cursor.description or []]
    records = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return [{**record, "scores": dict(record["scores"])} for record in records]


def judged_summary(db: BenchDB, weights: dict[str, float], refs: list[str] | None = None) -> dict[str, Any]:
    """Per run and bench: mean weighted overall, per prompt category, and per score category."""
    _judged_view(db, weights, refs)
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
                if key.startswith("eval/") and isinstance(value, int | float) and not isinstance(value, bool):
                    runs.append(ref)
                    steps.append(record["step"])
                    metrics.append(key)
                    values.append(float(value))
    db.con.execute(
        "CREATE OR REPLACE TEMP TABLE run_metrics AS SELECT unnest($r) AS run, unnest($s) AS step, "
        "unnest($m) AS metric, unnest($v::DOUBLE[]) AS value",
        {"r": runs, "s": steps, "m": metrics, "v": values},
    )
    return db.records("eval_rewards", baseline=baseline)
