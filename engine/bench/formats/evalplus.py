"""EvalPlus ``*eval_results.json``: one JSON document, two benches.

Current EvalPlus (``evalplus.evaluate``) writes::

    {"date": ..., "hash": ..., "eval": {task_id: [{"task_id", "solution", "base_status",
     "plus_status", "base_fail_tests", "plus_fail_tests"}, ...]}, "pass_at_k": {...}}

with statuses ``pass`` / ``fail`` / ``timeout`` (``plus_status`` is null with ``--base-only``).
EvalPlus releases before 0.2 wrote ``{task_id: {"nfiles", "base": [[status, details]], "plus":
[...]}}`` with statuses ``success`` / ``failed`` / ``timed out``; both shapes are read.

``<dataset>`` takes the base tests' verdict and ``<dataset>+`` needs base *and* plus to pass,
as EvalPlus scores its "+" column. The n entries of a task are samples 0..n-1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.bench.formats.common import Sink, clip, open_text, prefix_bench, task_id_of
from engine.bench.rows import bench_row, validate_bench_name
from engine.errors import ImportFormatError

NAME = "evalplus"
STATUSES = ("pass", "fail", "timeout")
# The statuses of EvalPlus before 0.2 (evalplus/eval/__init__.py: SUCCESS, FAILED, TIMEOUT).
_OLD_STATUSES = {"success": "pass", "failed": "fail", "timed out": "timeout"}


def load(path: Path) -> dict[str, Any]:
    """The document, or one clear error when it is not an EvalPlus result.

    NaN and Infinity are accepted here: EvalPlus's plus inputs contain them and ``json.dump``
    writes them into ``*_fail_tests``; they only ever end up inside an error summary.
    """
    with open_text(path) as handle:
        try:
            doc = json.load(handle)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(
                f"not valid JSON ({exc.msg}); expected an EvalPlus eval_results.json", path=path, line=exc.lineno
            ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("eval"), dict):
        raise ImportFormatError(
            'not an EvalPlus eval_results.json: expected a JSON object with an "eval" object of task ids',
            path=path,
        )
    return doc


def _dataset(task_id: str, bench: str | None) -> str:
    return bench if bench is not None else prefix_bench(task_id, fallback="evalplus")


def _summary(status: str, kind: str, fail_tests: Any) -> str:
    """``fail (plus): [[1.5, nan]]`` cut to ~200 characters: which inputs broke the solution."""
    text = f"{status} ({kind})"
    if fail_tests:
        text += ": " + json.dumps(fail_tests, ensure_ascii=False, default=str)
    return clip(text)


def _old_status(status: Any) -> Any:
    """An old status in today's words; anything unknown is kept as is, to be reported."""
    return _OLD_STATUSES.get(status, status) if isinstance(status, str) else status


def _old_summary(status: str, kind: str, details: Any) -> str:
    text = f"{status} ({kind})"
    if isinstance(details, list) and details:
        text += f": {details.count(False)} of {len(details)} tests run failed"
    return clip(text)


@dataclass
class _Sample:
    """One solution's verdicts, in either shape, before it becomes two rows."""

    task_id: str
    index: int
    base: Any
    plus: Any
    base_error: str
    plus_error: str
    solution: str | None = None


def _new_samples(task_id: str, entries: list[Any], sink: Sink) -> list[_Sample]:
    samples = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            sink.skip(sink.error("expected an object", field=f"{task_id}[{index}]"))
            continue
        base, plus = entry.get("base_status"), entry.get("plus_status")
        solution = entry.get("solution")
        samples.append(
            _Sample(
                task_id,
                index,
                base,
                plus,
                _summary(str(base), "base", entry.get("base_fail_tests")),
                _summary(str(plus), "plus", entry.get("plus_fail_tests")),
                solution if isinstance(solution, str) else None,
            )
        )
    return samples


def _old_samples(task_id: str, entry: dict[str, Any], sink: Sink) -> list[_Sample]:
    base, plus = entry.get("base"), entry.get("plus") or []
    if not isinstance(base, list) or not isinstance(plus, list):
        sink.skip(sink.error('expected "base" and "plus" lists of [status, details]', field=task_id))
        return []
    samples = []
    for index, verdict in enumerate(base):
        plus_verdict = plus[index] if index < len(plus) else None
        try:
            base_status, base_details = verdict
            plus_status, plus_details = plus_verdict if plus_verdict is not None else (None, None)
        except (TypeError, ValueError):
            sink.skip(sink.error("expected [status, details] pairs", field=f"{task_id}[{index}]"))
            continue
        base_new, plus_new = _old_status(base_status), _old_status(plus_status)
        samples.append(
            _Sample(
                task_id,
                index,
                base_new,
                plus_new,
                _old_summary(str(base_new), "base", base_details),
                _old_summary(str(plus_new), "plus", plus_details),
            )
        )
    return samples


def _add(sample: _Sample, sink: Sink, *, run: str, bench: str | None, with_plus: bool) -> None:
    field = f"{sample.task_id}[{sample.index}]"
    if sample.base not in STATUSES:
        why = f"unknown status {sample.base!r} (expected pass, fail or timeout); sample skipped"
        sink.skip(sink.error(why, field=f"{field}.base_status"))
        return
    dataset = _dataset(sample.task_id, bench)
    base_passed = sample.base == "pass"
    error = None if base_passed else sample.base_error
    sink.add(
        bench_row(
            run, dataset, sample.task_id, base_passed, error=error, sample=sample.index, completion=sample.solution
        ),
        field=field,
    )
    if not with_plus:
        return
    if sample.plus is None:
        sink.skip(sink.error(f"null (not run); left out of {dataset}+", field=f"{field}.plus_status"))
        return
    if sample.plus not in STATUSES:
        why = f"unknown status {sample.plus!r} (expected pass, fail or timeout); left out of {dataset}+"
        sink.skip(sink.error(why, field=f"{field}.plus_status"))
        return
    passed = base_passed and sample.plus == "pass"
    error = None if passed else (sample.base_error if not base_passed else sample.plus_error)
    sink.add(
        bench_row(
            run, f"{dataset}+", sample.task_id, passed, error=error, sample=sample.index, completion=sample.solution
        ),
        field=field,
    )


def parse(path: Path, sink: Sink, *, run: str, bench: str | None) -> None:
    """Add a ``<dataset>`` row and (unless run ``--base-only``) a ``<dataset>+`` row per solution."""
    results = load(path)["eval"]
    samples: list[_Sample] = []
    for key, entries in results.items():
        task_id = task_id_of(key)
        if task_id is None:
            sink.skip(sink.error("empty task id", field="eval"))
            continue
        if isinstance(entries, list):
            found = _new_samples(task_id, entries, sink)
        elif isinstance(entries, dict) and "base" in entries:
            found = _old_samples(task_id, entries, sink)
        else:
            sink.skip(sink.error("expected a list of results (or the old {nfiles, base, plus})", field=task_id))
            continue
        if not found and not entries:
            sink.skip(sink.error("no results for this task", field=task_id))
        samples.extend(found)
    # A --base-only evaluation has no plus verdicts at all: then there is no "+" bench to fill.
    with_plus = any(sample.plus is not None for sample in samples)
    if with_plus and bench is not None:
        validate_bench_name(f"{bench}+", path=str(path), field="--bench")
    for sample in samples:
        _add(sample, sink, run=run, bench=bench, with_plus=with_plus)
