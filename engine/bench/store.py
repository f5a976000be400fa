"""Bench rows on disk: ``bench/<ref>/<bench>.jsonl``, one file per (model, bench).

A *ref* names the model that was evaluated: a run (``bd6.8d``) or one of its checkpoints
(``bd6.8d@100``, the adapter saved at step 100, evaluated on its base before any merge).
Writing a bench replaces its file atomically, so re-importing the same results replaces them
and a reader never sees half a file. The files are the truth; the DuckDB table is a cache.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.bench.rows import validate_bench_name
from engine.errors import RunNameError
from engine.store.campaign import Campaign
from engine.store.jsonl import write_jsonl_atomic
from engine.store.names import is_valid_run_name

BENCH_DIR = "bench"
_REF = re.compile(r"^(?P<run>[^@]+)(?:@(?P<step>\d+))?$")


@dataclass(frozen=True)
class ModelRef:
    """A run, or one checkpoint of it."""

    run: str
    step: int | None = None

    def __str__(self) -> str:
        return self.run if self.step is None else f"{self.run}@{self.step}"


def parse_ref(text: str, *, field: str = "run") -> ModelRef:
    """``RUN`` or ``RUN@STEP``; anything else is one clear error."""
    match = _REF.match(text or "")
    if not match or not is_valid_run_name(match["run"]):
        raise RunNameError(
            f"{text!r} is not a run name (letters, digits, '.', '_', '-') or RUN@STEP for a checkpoint",
            field=field,
        )
    return ModelRef(match["run"], int(match["step"]) if match["step"] is not None else None)


def is_valid_ref(text: str) -> bool:
    try:
        parse_ref(text)
    except RunNameError:
        return False
    return True


def bench_root(campaign: Campaign) -> Path:
    return campaign.root / BENCH_DIR


def ref_dir(campaign: Campaign, ref: ModelRef | str) -> Path:
    ref = parse_ref(ref) if isinstance(ref, str) else ref
    return bench_root(campaign) / str(ref)


def bench_file(campaign: Campaign, ref: ModelRef | str, bench: str) -> Path:
    return ref_dir(campaign, ref) / f"{validate_bench_name(bench)}.jsonl"


def write_bench(campaign: Campaign, ref: ModelRef | str, bench: str, rows: Iterable[dict[str, Any]]) -> Path:
    """Replace the rows of one bench of one model (temp file + rename)."""
    path = bench_file(campaign, ref, bench)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(path, rows)
    return path


def bench_files(campaign: Campaign) -> list[Path]:
    """Every ``bench/<ref>/<bench>.jsonl`` whose folder and file names are valid, sorted.

    A stray folder or file made by hand is skipped rather than breaking every query.
    """
    root = bench_root(campaign)
    if not root.is_dir():
        return []
    files = []
    for path in root.glob("*/*.jsonl"):
        if is_valid_ref(path.parent.name) and not path.name.startswith("."):
            files.append(path)
    return sorted(files)
