"""A run's metrics: one object per trainer log in metrics.jsonl, keyed by (step, metric).

After a resume a step is logged again, and train and eval logs share steps. Readers
therefore merge by (step, metric): a later value of the same metric at the same step
replaces the earlier one, and different metrics logged at one step are all kept.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.store.jsonl import read_jsonl
from engine.store.numbers import is_integer

# Keys of a metrics line that describe the line rather than measure the model.
NON_METRIC_KEYS = frozenset({"step", "ts"})


def merge_by_step(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge metric records keyed by (step, metric), later values winning; sorted by step."""
    by_step: dict[int, dict[str, Any]] = {}
    for record in records:
        step = record.get("step")
        if not is_integer(step):
            continue
        merged = by_step.setdefault(step, {"step": step})
        for key, value in record.items():
            if key != "step":
                merged[key] = value
    return [by_step[step] for step in sorted(by_step)]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The deduplicated metrics of a metrics.jsonl file (torn last line tolerated)."""
    return merge_by_step(read_jsonl(path, strict=False))


def series(records: Iterable[dict[str, Any]], metric: str) -> list[tuple[int, Any]]:
    """(step, value) pairs of one metric from merged records."""
    return [(r["step"], r[metric]) for r in records if metric in r]


def last_step(metrics_path: Path) -> int:
    """The highest step in metrics.jsonl, reading only the file's tail (runs can be long)."""
    try:
        with open(metrics_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 65536))
            lines = handle.read().splitlines()
    except OSError:
        return 0
    for raw in reversed(lines):
        try:
            step = json.loads(raw).get("step")
        except (ValueError, AttributeError):
            continue
        if isinstance(step, int):
            return step
    return 0
