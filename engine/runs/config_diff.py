"""A run's config as the engine resolves it, flattened to dotted keys, grouped, and compared with another's.

``resolved_config`` is run.toml with every default filled in (``base`` from campaign.toml when the
run names none, ``name`` from the run's folder, the method as its whole table), keyed as the TOML
spells them (``class``, ``lambda``). ``flatten`` turns tables into dotted keys and arrays of tables
into indexed ones (``weights.rules[1].weight``, a rule's unset conditions left out); an array of
plain values stays one value. ``diff_configs`` lists the keys whose values differ (added, removed,
changed), in the first config's key order, then the keys only the other has; an absent key and a
None value read the same. The overview (engine.service.overview_routes) and the campaign report use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import JsonValue

from engine.api import ConfigChange, ConfigSection
from engine.store.campaign import Campaign

# Keys that name or describe a run rather than configure it: every two runs differ there.
DESCRIPTIVE_KEYS = ("name", "description")
RUN_KEYS = ("name", "description", "method", "base", "dataset", "eval_dataset", "eval_fraction", "parent")
SCHEDULE_KEYS = frozenset(
    f"train.{key}"
    for key in (
        "lr_scheduler", "warmup_ratio", "warmup_steps", "epochs", "max_steps",
        "logging_steps", "save_steps", "save_total_limit", "eval_steps",
    )
)  # fmt: skip
SECTION_TITLES = ("Run", "LoRA", "Optimiser", "Schedule", "Weights policy", "Cost and ledger", "Other")


def resolved_config(campaign: Campaign, run: str) -> dict[str, JsonValue]:
    """runs/<run>/run.toml validated, defaults filled in, flattened; a ``ConfigError`` when it is not valid."""
    config = campaign.load_run(run)
    data: dict[str, Any] = config.model_dump(mode="json", by_alias=True)
    # Always the method's whole table: ``method = "dpo"`` and a [method] table with dpo's defaults
    # are the same config (run.toml's short form would hide beta, loss_type, ...).
    data["method"] = config.method.model_dump(mode="json", by_alias=True)
    data["name"] = config.name or run
    data["base"] = config.base or campaign.config.base
    return flatten(data)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, JsonValue]:
    """Nested tables as dotted keys, arrays of tables as ``key[i].field``; other values as they are."""
    flat: dict[str, JsonValue] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat |= flatten(value, dotted)
        elif isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
            for index, item in enumerate(value):
                # A rule's unset conditions (None) are left out: the TOML never had them.
                flat |= flatten({k: v for k, v in item.items() if v is not None}, f"{dotted}[{index}]")
        else:
            flat[dotted] = value
    return flat


def section_of(key: str) -> str:
    """The overview group a dotted key belongs to."""
    if key in RUN_KEYS or key == "imported_from" or key.startswith("method."):
        return "Run"  # a method other than sft is a table: method.name, method.beta, ...
    if key.startswith("lora."):
        return "LoRA"
    if key in SCHEDULE_KEYS:
        return "Schedule"
    if key.startswith("train."):
        return "Optimiser"  # new [train] settings land here by default
    if key.startswith(("weights", "replicate", "kl")):
        return "Weights policy"
    if key.startswith(("cost", "ledger")):
        return "Cost and ledger"
    return "Other"


def sections(flat: Mapping[str, JsonValue]) -> list[ConfigSection]:
    """The flattened config in its groups, in SECTION_TITLES order (empty groups left out)."""
    grouped: dict[str, dict[str, JsonValue]] = {title: {} for title in SECTION_TITLES}
    for key, value in flat.items():
        grouped[section_of(key)][key] = value
    return [ConfigSection(title=title, values=values) for title, values in grouped.items() if values]


def same_value(a: JsonValue, b: JsonValue) -> bool:
    """Equal as TOML values: 16 and 16.0 are, true and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def diff_configs(
    config: Mapping[str, JsonValue], other: Mapping[str, JsonValue], *, ignore: Iterable[str] = DESCRIPTIVE_KEYS
) -> list[ConfigChange]:
    """The keys of two flattened configs whose values differ (``ignore``: keys never compared)."""
    skipped = set(ignore) | _empty_arrays_of_tables(config, other) | _empty_arrays_of_tables(other, config)
    changes: list[ConfigChange] = []
    for key, value in config.items():
        if key in skipped or (key not in other and value is None):
            continue  # an unset optional field (None) reads the same as an absent one
        if key not in other:
            changes.append(ConfigChange(key=key, change="added", value=value, other=None))
        elif not same_value(value, other[key]):
            changes.append(ConfigChange(key=key, change="changed", value=value, other=other[key]))
    for key, value in other.items():
        if key not in config and key not in skipped and value is not None:
            changes.append(ConfigChange(key=key, change="removed", value=None, other=value))
    return changes


def _empty_arrays_of_tables(config: Mapping[str, JsonValue], other: Mapping[str, JsonValue]) -> set[str]:
    """Keys that are ``[]`` in ``config`` where ``other`` has tables under them: the tables say it all."""
    return {key for key, value in config.items() if value == [] and any(k.startswith(f"{key}[") for k in other)}
