"""Judged suites and judged bench rows: what ``bench judge`` reads and what it writes.

A judged suite is a bench suite whose rows need no scorer (the judge is the scorer): ``prompt``
or ``messages``, ``category``, ``task_id``. A judged row is a canonical row plus the judge's
fields::

    {..., "passed": true, "error": null, "score": 8.35, "scores": {"voice": 8, ...}, "sample": 0,
     "category": "ground_truth", "judge_overall": 8.0, "critical_failures": [], "answer": 0,
     "repeat": 0, "judge_model": "qwen2.5-7b", "rubric_sha256": "…", "tokens_in": 812,
     "tokens_out": 95, "cost_usd": 0.0004, "judge_latency_ms": 1840.2, "judge_requests": 1}

``passed`` is false for a critical failure and for a judge error; a judge error has ``scores``
and ``score`` null (left out of every mean, never a 0) and ``error`` starting ``judge error:``.
With ``--samples N --repeats K`` the row's ``sample`` is ``answer * K + repeat``: the bench
layer's (bench, task_id, sample) stays unique and every judgement is one row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.bench.rows import JUDGE_ERROR, JUDGE_FIELDS, bench_row, is_valid_bench_name
from engine.bench.suite import SCORERS, SuiteRow, parse_suite_row
from engine.errors import ImportFormatError, NotFoundError
from engine.store.jsonl import scan_jsonl

# Filled in for a row without a scorer, so the generation worker's suite loader accepts it.
_PLACEHOLDER = {"expected": ""}


def load_judge_suite(path: Path) -> tuple[list[SuiteRow], list[dict[str, Any]]]:
    """The suite's rows (validated as ``bench run`` validates them) and the records the worker gets."""
    if not path.is_file():
        raise NotFoundError("suite file not found", path=path)
    default_bench = path.stem if is_valid_bench_name(path.stem) else None
    rows: list[SuiteRow] = []
    records: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    for item in scan_jsonl(path):
        if item.record is None:
            raise ImportFormatError(item.error or "expected a JSON object", path=path, line=item.lineno)
        record = dict(item.record)
        if not any(record.get(key) is not None for key in SCORERS):
            record.update(_PLACEHOLDER)
        row = parse_suite_row(record, default_bench=default_bench, path=path, line=item.lineno)
        if (row.bench, row.task_id) in seen:
            first = seen[(row.bench, row.task_id)]
            raise ImportFormatError(
                f"duplicate task {row.task_id!r} in bench {row.bench!r} (first on line {first})",
                path=path,
                line=item.lineno,
                field="task_id",
            )
        seen[(row.bench, row.task_id)] = item.lineno
        rows.append(row)
        records.append({**record, "bench": row.bench, "task_id": row.task_id})
    if not rows:
        raise ImportFormatError("the suite has no rows", path=path, line=1)
    return rows, records


def judged_row(
    run: str,
    row: SuiteRow,
    *,
    sample: int,
    completion: str,
    latency_ms: Any,
    judgement: dict[str, Any],
) -> dict[str, Any]:
    """A canonical row from one judgement (a record of the judge log, see ``engine.bench.judge``)."""
    error = judgement.get("error")
    critical: list[str] = judgement.get("critical_failures") or []
    if error is not None:
        message: str | None = JUDGE_ERROR + str(error)
    elif critical:
        message = "judge: critical failure: " + "; ".join(critical)[:200]
    else:
        message = None
    out = bench_row(
        run,
        row.bench,
        row.task_id,
        error is None and not critical,
        error=message,
        score=judgement.get("score"),
        scores=judgement.get("scores"),
        sample=sample,
        latency_ms=latency_ms,
        category=row.category,
        prompt=row.prompt_text,
        completion=completion,
    )
    for key in JUDGE_FIELDS:
        out[key] = judgement.get(key)
    out["critical_failures"] = critical
    return out
