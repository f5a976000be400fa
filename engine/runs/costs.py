"""What runs cost, as their run.toml ``[cost]`` declares it, per run and summed over the campaign.

tunedeck measures none of it (a GPU hour rented elsewhere, a judge's API bill): a person writes
the figures down once and status and report add them up. A figure a run does not declare stays
None — never 0 — so a sum says "not declared" instead of claiming a run was free.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.api import RunCost
from engine.errors import TunedeckError
from engine.store.campaign import Campaign
from engine.store.config import CostSettings

FIGURES = ("gpu_hours", "training_usd", "eval_usd", "data_usd")
DOLLARS = ("training_usd", "eval_usd", "data_usd")


def _add(values: Iterable[float | None]) -> float | None:
    declared = [v for v in values if v is not None]
    return sum(declared) if declared else None


def run_cost(cost: CostSettings) -> RunCost:
    """One run's declared figures, with the dollars added up."""
    figures = {name: getattr(cost, name) for name in FIGURES}
    return RunCost(**figures, total_usd=_add(figures[name] for name in DOLLARS))


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
        if declared is not None:
            costs[name] = run_cost(declared)
    return costs, sum_costs(costs.values()), warnings
