"""``tunedeck bench run RUN --suite SUITE``: generate with a run's model, score, write bench rows.

Three processes, each doing what only it may:

1. this one (CLI or service side, no torch) checks everything a user can get wrong first:
   the ref, the suite file line by line, the run and the model it names;
2. a worker (``python -P -m engine.worker.bench``) loads the model and writes completions;
3. each ``tests`` row runs in its own sandboxed interpreter (``engine.bench.sandbox``).

Results land as canonical rows in ``bench/<ref>/<bench>.jsonl`` (``RUN``, or ``RUN@STEP`` for a
checkpoint, ``RUN@0`` being the base model before training) and a ``bench`` event on the run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.api import BenchRunSummary, BenchTotals
from engine.bench.db import refresh_cache
from engine.bench.model_choice import choose_model
from engine.bench.rows import bench_row
from engine.bench.sandbox import network_isolation
from engine.bench.score import score_completions
from engine.bench.store import ModelRef, bench_file, replace_benches, resolve_ref
from engine.bench.suite import SuiteRow, load_suite
from engine.errors import ConfigError, TunedeckError
from engine.runs.launch import bench_command
from engine.store.campaign import Campaign, record_event
from engine.store.jsonl import read_jsonl

LOG_NAME = "bench.log"
MAX_SAMPLES = 100


# (model, suite, samples) -> the completions JSONL a bench worker wrote for them.
Generate = Callable[[ModelRef, Path, int], Path]


class BenchWorkerFailed(TunedeckError):
    """The generation worker exited with an error."""


def _last_line(log: Path, since: int) -> str:
    try:
        with open(log, "rb") as handle:
            handle.seek(since)
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1].removeprefix("tunedeck: ") if lines else "(no output)"


def _generate(campaign: Campaign, ref: ModelRef, suite: Path, out: Path, *, samples: int, log: Path) -> None:
    """Run the bench worker to completion; its stderr is appended to ``log``."""
    command = bench_command(campaign.run(ref.run).root, suite, out, samples=samples, checkpoint=ref.step)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as err:
        since = err.tell()
        err.write(f"--- bench {ref} on {suite} ({time.strftime('%Y-%m-%d %H:%M:%S')})\n".encode())
        err.flush()
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True, check=False
        )
    if done.returncode != 0:
        raise BenchWorkerFailed(
            f"the bench worker exited with status {done.returncode}: {_last_line(log, since)}", path=log
        )


def _completions(out: Path, rows: list[SuiteRow], samples: int) -> dict[tuple[str, str, int], dict[str, Any]]:
    found = {(r["bench"], r["task_id"], r["sample"]): r for r in read_jsonl(out)}
    for row in rows:
        for sample in range(samples):
            if (row.bench, row.task_id, sample) not in found:
                raise BenchWorkerFailed(
                    f"the bench worker wrote no completion for {row.bench}/{row.task_id} sample {sample}", path=out
                )
    return found


def run_suite(
    campaign: Campaign,
    ref: str,
    suite: Path,
    *,
    samples: int = 1,
    checkpoint: int | None = None,
    say: Callable[[str], None] | None = None,
    generate: Generate | None = None,
) -> BenchRunSummary:
    """Generate ``suite`` with the model ``ref`` names, score every row and write its bench rows.

    ``ref`` is ``RUN`` or ``RUN@STEP``; ``checkpoint`` is the same STEP given separately (0 is
    the base model). Raises a one-line ``TunedeckError`` for anything wrong, before any
    process starts whenever the problem is in the input. ``generate`` produces the completions
    file (the CLI hands it to the engine's queue); without it a worker runs here and now.
    """
    started = time.monotonic()
    tell = say or (lambda _message: None)
    model_ref = resolve_ref(ref, checkpoint)
    if not 1 <= samples <= MAX_SAMPLES:
        raise ConfigError(f"must be between 1 and {MAX_SAMPLES}, got {samples}", field="samples")
    suite = Path(suite).resolve()
    rows = load_suite(suite)
    choice = choose_model(campaign, model_ref.run, model_ref.step)
    paths = campaign.run(model_ref.run)

    tell(f"generating {len(rows)} rows x {samples} with {model_ref.run}'s {choice.label} model")
    generating = time.monotonic()
    if generate is not None:
        completions = _completions(generate(model_ref, suite, samples), rows, samples)
    else:
        scratch = Path(tempfile.mkdtemp(prefix=".bench-", dir=paths.root))
        try:
            out = scratch / "completions.jsonl"
            _generate(campaign, model_ref, suite, out, samples=samples, log=paths.root / LOG_NAME)
            completions = _completions(out, rows, samples)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    generation_s = round(time.monotonic() - generating, 3)

    tests = sum(row.tests is not None for row in rows) * samples
    if tests:
        tell(f"running {tests} test programs in the sandbox ({network_isolation()})")
    items = [(row, completions[(row.bench, row.task_id, sample)]) for sample in range(samples) for row in rows]
    scores = score_completions([(row, str(record.get("completion", ""))) for row, record in items])

    name = str(model_ref)
    by_bench: dict[str, list[dict[str, Any]]] = {}
    totals: dict[str, dict[str, int]] = {}
    for (row, record), (passed, error) in zip(items, scores, strict=True):
        sample = int(record["sample"])
        by_bench.setdefault(row.bench, []).append(
            bench_row(
                name,
                row.bench,
                row.task_id,
                passed,
                error=error,
                sample=sample,
                latency_ms=record.get("latency_ms"),
                category=row.category,
                prompt=row.prompt,
                completion=record.get("completion"),
            )
        )
        bench_totals = totals.setdefault(row.bench, {"total": 0, "passed": 0})
        if sample == 0:
            bench_totals["total"] += 1
            bench_totals["passed"] += int(passed)
    replace_benches(campaign, model_ref, by_bench)  # suite order within each sample
    # The next diff finds these rows in the cache (or loads them itself when it could not be used).
    refresh_cache(campaign, [bench_file(campaign, model_ref, bench) for bench in by_bench])
    record_event(
        paths.events, "bench", ref=name, suite=str(suite), model=choice.label, samples=samples, benches=totals,
        generation_s=generation_s,
    )  # fmt: skip
    summary = BenchRunSummary(
        run=name,
        rows=len(items),
        benches={bench: BenchTotals(**counts) for bench, counts in totals.items()},
        seconds=round(time.monotonic() - started, 2),
        model=choice.label,
        samples=samples,
    )
    for bench, counts in totals.items():
        tell(f"  {bench}: {counts['passed']}/{counts['total']} passed")
    return summary
