"""openai/human-eval ``*_results.jsonl``, written by ``evaluate_functional_correctness``.

Each line is the input sample (``task_id``, ``completion``, anything else it had) plus
``result`` (``passed``, ``timed out`` or ``failed: <exception>``) and ``passed``. Several lines
of one task are several samples, numbered 0, 1, 2... in file order, as human-eval numbers its
completions. Task ids need not be HumanEval's: the bench comes from their prefix.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from engine.bench.formats.common import Sink, iter_objects, prefix_bench, task_id_of
from engine.bench.rows import bench_row

NAME = "human-eval"
# The bench of task ids with no "<dataset>/" prefix.
DEFAULT_BENCH = "human-eval"


def parse(path: Path, sink: Sink, *, run: str, bench: str | None) -> None:
    """Add one row per line of ``path``; ``error`` is the result text of a failed sample."""
    # A bad line still used up its completion id: counting it (whenever its task id can be
    # read) keeps the samples after it numbered as human-eval numbered them.
    samples: Counter[str] = Counter()

    def count(obj: dict[str, Any]) -> None:
        task_id = task_id_of(obj.get("task_id"))
        if task_id is not None:
            samples[task_id] += 1

    for lineno, obj in iter_objects(path, sink, on_rejected=count):
        task_id = task_id_of(obj.get("task_id"))
        if task_id is None:
            sink.skip(sink.error(f"missing or not a string: {obj.get('task_id')!r}", line=lineno, field="task_id"))
            continue
        sample = samples[task_id]
        count(obj)
        passed, result = obj.get("passed"), obj.get("result")
        if not isinstance(passed, bool):
            sink.skip(sink.error(f"expected true or false, got {passed!r}", line=lineno, field="passed"))
            continue
        if not isinstance(result, str):
            sink.skip(sink.error(f"expected the result text, got {result!r}", line=lineno, field="result"))
            continue
        completion = obj.get("completion")
        row = bench_row(
            run,
            bench if bench is not None else prefix_bench(task_id, fallback=DEFAULT_BENCH),
            task_id,
            passed,
            error=None if passed else result,
            sample=sample,
            completion=completion if isinstance(completion, str) else None,
        )
        sink.add(row, line=lineno)
