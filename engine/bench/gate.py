"""The gate (campaign.toml ``[gate]``): anchors that must pass, rows lost against production at
most ``max_lost``, and a minimum pass rate per bench. A failing gate blocks promotion and says
exactly which rows and rules failed.

The gate reads bench rows, so it works the same on a run and on one of its checkpoints
(``RUN@STEP``, its adapter on the base) — BD6.2's lesson: test the previous wins before merging.
"""

from __future__ import annotations

from engine.api import GateAnchors, GatePassRate, GateResult
from engine.bench.compare import diff, require_results
from engine.bench.db import BenchDB
from engine.errors import ConfigError
from engine.store.config import GateConfig
from engine.store.production import production_path, read_production


def gate_config(db: BenchDB) -> GateConfig:
    config = db.campaign.config.gate
    if config is None:
        raise ConfigError(
            "no [gate] section: declare anchors, max_lost or min_pass_rate",
            path=db.campaign.root / "campaign.toml",
            field="gate",
        )
    return config


def evaluate_gate(db: BenchDB, ref: str, config: GateConfig | None = None) -> GateResult:
    """Apply the campaign's gate to the bench rows of ``ref`` (a run or RUN@STEP)."""
    config = config or gate_config(db)
    require_results(db, ref)
    result = GateResult(
        run=ref,
        passed=True,
        anchors=GateAnchors(total=0, passed=0, failed=[], missing=[]),
        lost=[],
        production=None,
        pass_rates={},
        reasons=[],
        notes=[],
    )

    if config.anchors:
        anchors = list(dict.fromkeys(config.anchors))
        result.anchors.total = len(anchors)
        for task_id, passed, _benches in db.query("anchors", run=ref, anchors=anchors):
            if passed:
                result.anchors.passed += 1
            else:
                result.anchors.failed.append(task_id)
                if passed is None:
                    result.anchors.missing.append(task_id)
        if result.anchors.failed:
            missing = f" ({len(result.anchors.missing)} not evaluated)" if result.anchors.missing else ""
            result.reasons.append(
                f"anchors {result.anchors.passed}/{result.anchors.total}: failed "
                f"{', '.join(result.anchors.failed)}{missing}"
            )

    if config.max_lost is not None:
        pointer = read_production(db.campaign)
        if pointer is None:
            result.notes.append(f"max_lost not checked: nothing in production ({production_path(db.campaign).name})")
        elif pointer["run"] == ref.split("@")[0] and "@" not in ref:
            result.production = ref
            result.notes.append("max_lost not checked: this run is production")
        else:
            result.production = str(pointer["run"])
            compared = diff(db, ref, result.production, baseline_is_production=True)
            result.lost = compared.lost
            production_wins = {key for (key,) in db.query("passed_rows", run=result.production)}
            unchecked = [k for k in compared.only_baseline if k in production_wins]
            if unchecked:
                result.notes.append(
                    f"{len(unchecked)} rows production passes were not evaluated for {ref}: {', '.join(unchecked[:10])}"
                    + (" ..." if len(unchecked) > 10 else "")
                )
            if len(result.lost) > config.max_lost:
                result.reasons.append(
                    f"lost {len(result.lost)} rows against production {result.production} "
                    f"(max_lost = {config.max_lost}): {', '.join(result.lost)}"
                )

    if config.min_pass_rate:
        rates = {r["bench"]: r for r in db.records("pass_rates", runs=[ref])}
        for bench, minimum in config.min_pass_rate.items():
            rate = rates.get(bench)
            if rate is None:
                result.reasons.append(f"{bench}: no results (min_pass_rate = {minimum})")
                continue
            result.pass_rates[bench] = GatePassRate(
                total=rate["total"], passed=rate["passed"], pass_rate=rate["pass_rate"], min=minimum
            )
            if rate["pass_rate"] < minimum:
                result.reasons.append(
                    f"{bench}: pass rate {rate['pass_rate']:.3f} ({rate['passed']}/{rate['total']}) below {minimum}"
                )

    result.passed = not result.reasons
    return result
