"""What runs cost, as their run.toml ``[cost]`` declares it plus what tunedeck measured, per run and campaign.

Most of it tunedeck cannot measure (a GPU hour rented elsewhere, data bought or generated): a person
writes the figures down once and status and report add them up. What it does measure is the
judge's bill and the bench's time: every ``tunedeck bench judge`` appends a ``bench_judge`` event
with its ``cost_usd``, ``generation_s`` and ``judging_s``, and every ``bench run`` a ``bench`` event
with its ``generation_s``; they are summed as ``judge_usd``, ``generation_s`` and ``judging_s`` (a
judging repeated is paid twice, so it counts twice). A
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

FIGURES = ("gpu_hours", "training_usd", "eval_usd", "data_usd", "judge_usd", "generation_s", "judging_s")
DOLLARS = ("training_usd", "eval_usd", "data_usd", "judge_usd")
DECLARED = ("gpu_hours", "training_usd", "eval_usd", "data_usd")
# The events whose figures tunedeck measured itself: (event, field) -> the RunCost figure they add to.
MEASURED = {
    ("bench_judge", "cost_usd"): "judge_usd",
    ("bench_judge", "generation_s"): "generation_s",
    ("bench_judge", "judging_s"): "judging_s",
    ("bench", "generation_s"): "generation_s",
}


def _add(values: Iterable[float | None]) -> float | None:
    declared = [v for v in values if v is not None]
    return sum(declared) if declared else None


def run_cost(cost: CostSettings, measured: dict[str, float | None] | None = None) -> RunCost:
    """One run's declared figures and what tunedeck measured (``measured_spend``), the dollars added up."""
    figures: dict[str, float | None] = {name: getattr(cost, name) for name in DECLARED}
    figures |= {name: (measured or {}).get(name) for name in FIGURES if name not in DECLARED}
    return RunCost(**figures, total_usd=_add(figures[name] for name in DOLLARS))


def measured_spend(events: Path) -> dict[str, float | None]:
    """The run's bench events summed: judge dollars and generation / judging seconds (None: none measured)."""
    found: dict[str, list[float]] = {figure: [] for figure in MEASURED.values()}
    for event in read_jsonl(events, strict=False):
        for (kind, key), figure in MEASURED.items():
            value = event.get(key) if event.get("event") == kind else None
            if is_number(value) and math.isfinite(value) and value >= 0:
                found[figure].append(float(value))
    return {figure: (round(sum(values), 6) if values else None) for figure, values in found.items()}


def sum_costs(costs: Iterable[RunCost]) -> RunCost:
    """Several runs' costs summed figure by figure (None where no run declares that figure)."""
    items = list(costs)
    figures = {name: _add(getattr(c, name) for c in items) for name in FIGURES}
    return RunCost(**figures, total_usd=_add(c.total_usd for c in items))


def campaign_costs(campaign: Campaign) -> tuple[dict[str, RunCost], RunCost, list[str]]:
    """Every run's declared cost, their sum, and a warning per run.toml that could not be read."""
    costs, warnings = run_costs(campaign, campaign.run_names())
    return costs, sum_costs(costs.values()), warnings


def run_costs(campaign: Campaign, names: Iterable[str]) -> tuple[dict[str, RunCost], list[str]]:
    """These runs' ledgers (runs with nothing declared or measured left out), and a warning per bad run.toml."""
    costs: dict[str, RunCost] = {}
    warnings: list[str] = []
    for name in names:
        if not campaign.run(name).run_toml.is_file():
            continue  # bench results imported under a name no run.toml declares: nothing to account
        try:
            declared = campaign.load_run(name).cost
        except TunedeckError as exc:
            warnings.append(f"cost of {name} not counted: {exc}")
            continue
        measured = measured_spend(campaign.run(name).events)
        if declared is not None or any(value is not None for value in measured.values()):
            costs[name] = run_cost(declared or CostSettings(), measured)
    return costs, warnings
