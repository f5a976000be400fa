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
from engine.errors import ConfigError, RunNameError
from engine.store.campaign import Campaign, engine_paths, ensure_private_dir
from engine.store.jsonl import write_jsonl_atomic
from engine.store.locks import ExclusiveLock
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


def resolve_ref(ref: str, checkpoint: int | None) -> ModelRef:
    """``RUN`` plus ``--checkpoint STEP``, or ``RUN@STEP``: the adapter saved at step STEP (0: the base model).

    What ``--checkpoint`` means on every command (bench run, gate, merge).
    """
    parsed = parse_ref(ref)
    if checkpoint is not None and checkpoint < 0:
        raise ConfigError(f"must be a step >= 0, got {checkpoint}", field="checkpoint")
    if parsed.step is not None and checkpoint is not None and parsed.step != checkpoint:
        raise ConfigError(f"{ref!r} names step {parsed.step} but --checkpoint says {checkpoint}", field="checkpoint")
    return ModelRef(parsed.run, parsed.step if parsed.step is not None else checkpoint)


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


# How long a second writer of the same model's results waits for the first before giving up.
WRITER_WAIT_S = 60.0


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except FileNotFoundError:
        return 0


def replace_benches(
    campaign: Campaign, ref: ModelRef | str, benches: dict[str, list[dict[str, Any]]]
) -> dict[str, int]:
    """Replace the rows of several benches of one model, one writer per model at a time.

    Two imports (or an import and a ``bench run``) into the same model once both reported
    success while one silently discarded the other. Writers now take the model's lock in
    turn, and each says what it replaced: the rows each bench held before, by bench (0 when
    it is new), counted under the lock so the answer is the truth about what this write undid.
    """
    key = str(parse_ref(ref) if isinstance(ref, str) else ref)
    private = ensure_private_dir(engine_paths(campaign.root).root)  # 0700, as the engine keeps it
    lock = ExclusiveLock(
        private / "locks" / f"bench.{key}.lock",
        what=f"another process is writing the bench results of {key}",
    )
    lock.acquire(wait_s=WRITER_WAIT_S)
    try:
        replaced = {bench: _count_lines(bench_file(campaign, key, bench)) for bench in benches}
        for bench, rows in benches.items():
            write_bench(campaign, key, bench, rows)
    finally:
        lock.release()
    return replaced


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
