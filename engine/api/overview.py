"""A run at a glance (``GET /runs/{run}/overview``): its resolved config, how it differs from production's, its figures.

The config is run.toml as the engine resolves it (every default filled in, ``base`` from
campaign.toml when the run names none), flattened to dotted keys (``train.learning_rate``,
``weights.rules[0].task_id``) and grouped for reading. A config difference compares two such
flattened configs key by key (engine.runs.config_diff), so the campaign report can reuse it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from engine.api.base import ApiModel
from engine.api.monitor import RunSummary

ChangeKind = Literal["added", "removed", "changed"]


class ConfigChange(ApiModel):
    """One dotted key whose value differs between a run's config and another's."""

    key: str
    change: ChangeKind = Field(description="added: only the run has it; removed: only the other has it")
    value: JsonValue = Field(description="the run's value (None when removed)")
    other: JsonValue = Field(description="the other config's value (None when added)")


class ConfigSection(ApiModel):
    """One group of a run's resolved config (run, LoRA, optimiser, schedule, weights policy)."""

    title: str
    values: dict[str, JsonValue] = Field(description="dotted key -> value, in the config's order")


class RunOverview(ApiModel):
    """``GET /runs/{run}/overview``: everything the overview screen shows, in one answer."""

    run: str
    config: list[ConfigSection] = Field(description="empty when run.toml cannot be read (see config_error)")
    config_error: str | None = Field(description="why run.toml could not be resolved, as the CLI says it")
    production: str | None = Field(description="the run in production (production.json), if any")
    production_diff: list[ConfigChange] | None = Field(
        description="this run's config against production's, changed keys only; None when there is nothing to compare"
    )
    production_note: str | None = Field(description="why there is no diff: no production, this run is it, ...")
    summary: RunSummary
    runtime_s: float | None = Field(description="seconds spent training, summed over launches (events.jsonl)")
