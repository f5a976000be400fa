"""The next training dataset from a run's bench results (BD6.2's lesson).

Not the union of everything that ever failed — that overtrained BD6.2 onto the hard tail and
made it forget its wins — but the run's *fresh* failures joined with reference solutions
(``class = "poison"``, the seeds' word for rows the model gets wrong), plus a small sample of
rows it already passes as positive contrast (``class = "anchor"``), the gate's anchors first.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from engine.api import HarvestSummary
from engine.bench.compare import require_results
from engine.bench.db import BenchDB
from engine.errors import DatasetError
from engine.store.jsonl import scan_jsonl, write_jsonl_atomic
from engine.store.numbers import is_integer

# Keys a reference row may use for its solution, in order of preference.
SOLUTION_KEYS = ("completion", "solution", "canonical_solution", "reference", "code")


def load_refs(path: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Reference rows by task id (``bench:task_id`` too when a row names its bench); bad lines reported."""
    if not path.is_file():
        raise DatasetError("file not found", path=path)
    refs: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for item in scan_jsonl(path):
        if item.error is not None:
            skipped.append(f"{path}:{item.lineno}: {item.error}")
            continue
        record = item.record or {}
        task_id, prompt = record.get("task_id"), record.get("prompt")
        solution = next((record[k] for k in SOLUTION_KEYS if isinstance(record.get(k), str)), None)
        if not (isinstance(task_id, str) or is_integer(task_id)):
            skipped.append(f"{path}:{item.lineno}: task_id: missing")
        elif not isinstance(prompt, str):
            skipped.append(f"{path}:{item.lineno}: prompt: missing or not a string")
        elif solution is None:
            skipped.append(f"{path}:{item.lineno}: completion: none of {', '.join(SOLUTION_KEYS)} is a string")
        else:
            ref = {"task_id": str(task_id), "prompt": prompt, "completion": solution}
            bench = record.get("bench")
            if isinstance(bench, str):
                refs[f"{bench}:{task_id}"] = ref
            refs.setdefault(str(task_id), ref)
    if not refs:
        raise DatasetError(f"no usable reference rows ({len(skipped)} skipped)", path=path)
    return refs, skipped


def harvest(
    db: BenchDB, ref: str, refs_path: Path, out: Path, *, anchors: int = 20, seed: int = 0, force: bool = False
) -> HarvestSummary:
    """Write ``out``: ``ref``'s failed rows with references, plus up to ``anchors`` passed rows.

    An existing ``out`` is replaced only with ``force``: a mistyped ``--out campaign.toml``
    must not cost anyone their campaign.
    """
    if out.exists() and not force:
        raise DatasetError("already exists; pass --force to replace it", path=out, field="--out")
    require_results(db, ref)
    refs, skipped = load_refs(refs_path)
    verdicts = db.query("run_verdicts", run=ref)
    failed_without_ref: list[str] = []
    rows: list[dict[str, Any]] = []
    wins: list[dict[str, Any]] = []
    seen: set[str] = set()
    for bench, task_id, passed in verdicts:
        reference = refs.get(f"{bench}:{task_id}") or refs.get(task_id)
        if reference is None:
            if not passed:
                failed_without_ref.append(f"{bench}:{task_id}")
            continue
        if task_id in seen:  # the same task in two benches (EvalPlus base and plus) trains once
            continue
        row = {**reference, "bench": bench}
        if passed:
            wins.append({**row, "class": "anchor"})
        else:
            seen.add(task_id)
            rows.append({**row, "class": "poison"})
    wins = [w for w in wins if w["task_id"] not in seen]
    gate = db.campaign.config.gate
    preferred = set(gate.anchors) if gate else set()
    first = [w for w in wins if w["task_id"] in preferred]
    rest = [w for w in wins if w["task_id"] not in preferred]
    random.Random(seed).shuffle(rest)
    chosen: list[dict[str, Any]] = []
    for win in first + rest:
        if len(chosen) >= anchors:
            break
        if win["task_id"] not in {c["task_id"] for c in chosen}:
            chosen.append(win)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(out, rows + chosen)
    return HarvestSummary(
        out=out,
        rows=len(rows) + len(chosen),
        poison=len(rows),
        anchors=len(chosen),
        failed_without_ref=failed_without_ref,
        skipped_refs=skipped,
    )
