"""What runs cost, as their run.toml ``[cost]`` declares it plus what tunedeck measured, per run and campaign.

Most of it tunedeck cannot measure (a GPU hour rented elsewhere, data bought or generated): a person
writes the figures down once and status and report add them up. What it does measure is the
judge's bill: every ``tunedeck bench judge`` appends a ``bench_judge`` event with its ``cost_usd``,
and those are summed as ``judge_usd`` (a judging repeated is paid twice, so it counts twice). A
figure nobody declared or measured stays None — never 0 — so a sum says "not known" instead of
claiming a run was free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from engine.api import RunCost
from engine.errors import TunedeckError
from engine.store.campaign import Campaign
from engine.store.config import CostSettings
from engine.store.jsonl import read_jsonl
from engine.store.numbers import is_number

FIGURES = ("gpu_hours", "training_usd", "eval_usd", "data_usd", "judge_usd")
DOLLARS = ("training_usd", "eval_usd", "data_usd", "judge_usd")


def _add(values: Iterable[float | None]) -> float | None:
    declared = [v for v in values if v is not None]
    return sum(declared) if declared else None


def run_cost(cost: CostSettings, judge_usd: float | None = None) -> RunCost:
    """One run's declared figures and its measured judge spend, with the dollars added up."""
    figures = {name: getattr(cost, name) for name in FIGURES if name != "judge_usd"} | {"judge_usd": judge_usd}
    return RunCost(**figures, total_usd=_add(figures[name] for name in DOLLARS))


def judge_spend(events: Path) -> float | None:
    """What the run's ``bench judge`` calls paid (``cost_usd`` of its bench_judge events); None: none priced."""
    paid = [e.get("cost_usd") for e in read_jsonl(events, strict=False) if e.get("event") == "bench_judge"]
    return _add(float(v) for v in paid if is_number(v) and math.isfinite(v))


def sum_costs(costs: Iterable[RunCost]) -> RunCost:
    """Several runs' costs summed figure by figure (None where no run declares that figure)."""
    items = list(costs)
    figures = {name: _add(getattr(c, name) for c in items) for name in FIGURES}
    return RunCost(**figures, total_usd=_add(c.total_usd for c in items))


def campaign_costs(campaign: Campaign) -> tuple[dict[str, RunCost], RunCost, list[str]]:
    """Every run's declared cost, their sum, and a warning per run.toml that could not be read."""
    costs: dict[str, RunCost] = {}
    warnings: list[str] = []
    for name in campaign.run_names():
        try:
            declared = campaign.load_run(name).cost
        except TunedeckError as exc:
            warnings.append(f"cost of {name} not counted: {exc}")
            continue
        judged = judge_spend(campaign.run(name).events)
        if declared is not None or judged is not None:
            costs[name] = run_cost(declared or CostSettings(), judged)
    return costs, sum_costs(costs.values()), warnings
