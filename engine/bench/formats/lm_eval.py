"""lm-evaluation-harness ``--log_samples`` files: ``samples_<task>_<date>.jsonl``.

Each line is one document under one filter: ``doc_id``, ``doc``, ``target``, ``arguments``,
``resps``, ``filtered_resps``, ``filter``, ``metrics`` (the metric names) and each metric as a
top-level key. Only the verdict is kept: the payloads (``doc``, ``arguments``, ``resps``) can
make a log 100 MB and are left in the file they came from.

Tasks with several filters (gsm8k: ``strict-match`` and ``flexible-extract``) log every document
once per filter. The bench named after the task takes the first filter in file order and each
other filter becomes ``<task>.<filter>``, so no task id appears twice in a bench.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from engine.bench.formats.common import Sink, bench_name, iter_objects, task_id_of
from engine.bench.rows import bench_row

NAME = "lm-eval"

# lm-eval names the file samples_<task>_<date_id>, date_id = datetime.now().isoformat() with ':'
# replaced by '-' (EvaluationTracker.save_results_samples). Task names may contain underscores.
_SAMPLES_FILE = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?)$")
# Used when a line has no ``metrics`` list (older versions, hand-made logs), in this order.
FALLBACK_METRICS = ("exact_match", "acc", "acc_norm", "pass@1", "pass_at_1", "em", "f1")
# Listed first by some tasks (lambada: ["perplexity", "acc"]) but a log-likelihood, not a verdict:
# the first *other* listed metric decides instead.
_NOT_VERDICTS = frozenset({"perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte"})


def task_from_filename(path: Path) -> str:
    """The task of ``samples_<task>_<date>.jsonl``; any other file name gives its stem."""
    name = path.name
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    match = _SAMPLES_FILE.match(name)
    return match["task"] if match else name


def _metric_name(obj: dict[str, Any]) -> str | None:
    listed = obj.get("metrics")
    if isinstance(listed, list) and listed:
        names = [name for name in listed if isinstance(name, str)]
        verdicts = [name for name in names if name not in _NOT_VERDICTS]
        if verdicts or names:
            return (verdicts or names)[0]
    for name in FALLBACK_METRICS:
        if name in obj:
            return name
    return None


def parse(path: Path, sink: Sink, *, run: str, bench: str | None) -> None:
    """Add one row per (doc_id, filter) of ``path`` to ``sink``; sample is always 0."""
    base = bench if bench is not None else bench_name(task_from_filename(path), fallback="lm-eval")
    first_filter: str | None = None
    for lineno, obj in iter_objects(path, sink):
        task_id = task_id_of(obj.get("doc_id"))
        if task_id is None:
            sink.skip(sink.error(f"missing or not an integer: {obj.get('doc_id')!r}", line=lineno, field="doc_id"))
            continue
        filter_name = obj.get("filter", "none")
        if not isinstance(filter_name, str) or not filter_name:
            sink.skip(sink.error(f"expected a filter name, got {filter_name!r}", line=lineno, field="filter"))
            continue
        metric = _metric_name(obj)
        if metric is None:
            expected = ", ".join(FALLBACK_METRICS)
            sink.skip(
                sink.error(f"no metric to judge by (no list, and none of {expected})", line=lineno, field="metrics")
            )
            continue
        value = obj.get(metric)
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            sink.skip(sink.error(f"expected a finite number, got {value!r}", line=lineno, field=metric))
            continue
        if first_filter is None:
            first_filter = filter_name
        name = base if filter_name == first_filter else bench_name(f"{base}.{filter_name}", fallback=base)
        row = bench_row(run, name, task_id, value == 1, score=float(value))
        sink.add(row, line=lineno, field="doc_id")
