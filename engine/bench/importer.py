"""``tunedeck bench import``: another tool's results file -> canonical rows under ``bench/<ref>/``.

The file is parsed completely before anything is written, so a file that turns out to hold
no valid row leaves the campaign untouched. Each bench is then written whole with
``write_bench`` (temp file + rename): importing the same file again replaces its rows. The files
written are then loaded into the DuckDB cache (``refresh_cache``) before the import returns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.api import BenchImportSummary, BenchTotals
from engine.bench.db import refresh_cache
from engine.bench.formats import FORMATS, PARSERS, Sink
from engine.bench.formats.detect import resolve
from engine.bench.rows import validate_bench_name
from engine.bench.store import bench_file, parse_ref, replace_benches
from engine.errors import ImportFormatError, NotFoundError
from engine.store.campaign import Campaign, record_event


def bench_totals(rows: list[dict[str, Any]]) -> BenchTotals:
    """Tasks and first-sample passes of one bench (a task's verdict is its lowest sample's)."""
    first: dict[str, tuple[int, bool]] = {}
    for row in rows:
        seen = first.get(row["task_id"])
        if seen is None or row["sample"] < seen[0]:
            first[row["task_id"]] = (row["sample"], row["passed"])
    return BenchTotals(total=len(first), passed=sum(passed for _, passed in first.values()))


def import_results(
    campaign: Campaign,
    path: Path,
    run: str,
    *,
    fmt: str = "auto",
    bench: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> BenchImportSummary:
    """Import ``path`` as the results of ``run`` (``RUN`` or ``RUN@STEP``; no run.toml needed).

    ``fmt`` is ``auto`` or one of ``FORMATS``; ``bench`` overrides the bench name the file
    implies. Raises ``ImportFormatError`` (one line, naming the file) when the file is in no
    known format, does not fit ``fmt``, or has no valid row.
    """
    ref = parse_ref(run)
    path = Path(path)
    if bench is not None:
        validate_bench_name(bench, field="--bench")
    if not path.is_file():
        raise NotFoundError("no such file", path=path)
    used = resolve(path, fmt, FORMATS)
    weights = campaign.config.judge.weights if campaign.config.judge else None
    sink = Sink(path, progress=progress, judge_weights=weights)  # progress: rows so far, about once a second
    PARSERS[used](path, sink, run=str(ref), bench=bench)
    sink.finish()
    if sink.rows == 0:
        first = f"; first: {sink.reasons[0]}" if sink.reasons else ""
        raise ImportFormatError(f"no valid {used} row to import ({sink.skipped} skipped{first})", path=path)
    replaced = replace_benches(campaign, ref, sink.benches)
    files = [bench_file(campaign, ref, name) for name in sink.benches]
    # Loaded into the cache now, so the first diff after an import is as fast as the next one.
    refresh_cache(campaign, files)
    events = campaign.run(ref.run).events
    if events.parent.is_dir():  # a run tunedeck knows: its stream tells the TUI that results came
        record_event(events, "bench_import", ref=str(ref), path=str(path), format=used, rows=sink.rows)
    return BenchImportSummary(
        run=str(ref),
        format=used,
        path=path,
        rows=sink.rows,
        benches={name: bench_totals(rows) for name, rows in sink.benches.items()},
        skipped=sink.skipped,
        reasons=sink.reasons,
        files=files,
        replaced=replaced,
    )
