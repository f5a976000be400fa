"""The canonical bench row (DESIGN.md "Canonical bench row") and the names it carries.

One row is one evaluation of one task by one model::

    {"run": "bd6.8d", "bench": "humaneval", "task_id": "HumanEval/85", "passed": false,
     "error": "AssertionError", "score": null, "scores": null, "sample": 0, "latency_ms": 812.0}

``sample`` numbers repeated evaluations of the same row; a task's verdict is the one of its
lowest sample, and rows whose samples disagree are flaky. Optional extra keys that tunedeck
understands: ``category`` (a judged prompt's category, for per-category means), ``completion``
and ``prompt`` (kept for harvesting and for the Compare screen).
"""

from __future__ import annotations

import math
import re
from typing import Any

from engine.errors import ImportFormatError
from engine.store.names import is_valid_run_name
from engine.store.numbers import is_integer, is_number

# The keys every canonical row has, in the order they are written.
ROW_FIELDS = ("run", "bench", "task_id", "passed", "error", "score", "scores", "sample", "latency_ms")
# Optional keys kept when present; anything else is dropped on import.
EXTRA_FIELDS = ("category", "completion", "prompt")
# A judged row's own fields (engine.bench.judge_rows), after the canonical ones. Kept when a
# judged bench file is imported again with --format tunedeck: its cost and provenance too.
JUDGE_FIELDS = (
    "judge_overall",
    "critical_failures",
    "answer",
    "repeat",
    "judge_model",
    "rubric_sha256",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "judge_latency_ms",
    "judge_requests",
)
_JUDGE_INTEGERS = frozenset({"answer", "repeat", "tokens_in", "tokens_out", "judge_requests"})
_JUDGE_NUMBERS = frozenset({"judge_overall", "cost_usd", "judge_latency_ms"})

# How a judged row's ``error`` starts when the judge's answer could not be read: that row is no
# evaluation of the model (no score, no verdict, never a 0 or a failure).
JUDGE_ERROR = "judge error: "

# Bench names become file names (bench/<run>/<bench>.jsonl): EvalPlus's "humaneval+" needs the plus.
_BENCH_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$")


def is_valid_bench_name(name: str) -> bool:
    return bool(_BENCH_NAME.match(name)) and ".." not in name


def validate_bench_name(name: str, *, path: str | None = None, line: int | None = None, field: str = "bench") -> str:
    """``name`` if it can be a bench name (letters, digits, ``. _ + -``), else one clear error."""
    if not isinstance(name, str) or not is_valid_bench_name(name):
        raise ImportFormatError(
            f"{name!r} is not a usable bench name (letters, digits, '.', '_', '+', '-')",
            path=path,
            line=line,
            field=field,
        )
    return name


def bench_row(
    run: str,
    bench: str,
    task_id: str,
    passed: bool,
    *,
    error: str | None = None,
    score: float | None = None,
    scores: dict[str, float] | None = None,
    sample: int = 0,
    latency_ms: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A canonical row with its keys in the canonical order (extras last, ``None`` extras left out)."""
    row: dict[str, Any] = {
        "run": run,
        "bench": bench,
        "task_id": task_id,
        "passed": bool(passed),
        "error": error,
        "score": score,
        "scores": scores,
        "sample": int(sample),
        "latency_ms": latency_ms,
    }
    for key in EXTRA_FIELDS:
        if extra.get(key) is not None:
            row[key] = extra[key]
    return row


# The cache's sample column is a 32-bit INTEGER: a larger number once made every query of the
# campaign fail until the file was deleted by hand, so it is refused at the door instead.
MAX_SAMPLE = 2**31 - 1


def _finite_or_none(value: Any, *, path: str, line: int, field: str) -> float | None:
    if value is None:
        return None
    if not is_number(value):
        raise ImportFormatError(f"expected a number or null, got {value!r}", path=path, line=line, field=field)
    if not math.isfinite(value):
        raise ImportFormatError(f"{value} is not a finite number", path=path, line=line, field=field)
    return float(value)


def _judge_fields(obj: dict[str, Any], *, path: str, line: int) -> dict[str, Any]:
    """The judge fields of a row written by ``bench judge`` (or ``--format judged``), validated."""
    out: dict[str, Any] = {}
    for key in JUDGE_FIELDS:
        if key not in obj:
            continue
        value = obj[key]
        if value is None:
            out[key] = None
        elif key in _JUDGE_INTEGERS:
            if not is_integer(value) or value < 0:
                raise ImportFormatError(f"expected an integer >= 0, got {value!r}", path=path, line=line, field=key)
            out[key] = int(value)
        elif key in _JUDGE_NUMBERS:
            out[key] = _finite_or_none(value, path=path, line=line, field=key)
        elif key == "critical_failures":
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ImportFormatError("expected a list of strings", path=path, line=line, field=key)
            out[key] = list(value)
        elif not isinstance(value, str):
            raise ImportFormatError(f"expected a string, got {value!r}", path=path, line=line, field=key)
        else:
            out[key] = value
    return out


def check_row(obj: Any, *, run: str, bench: str | None, path: str, line: int) -> dict[str, Any]:
    """Validate one tunedeck-format row (as written by tunedeck or by a user's script).

    ``run`` is the run being imported into: it replaces whatever the row says. ``bench`` given
    by the caller (``--bench``) replaces the row's own. Raises ``ImportFormatError`` naming the
    line and field at fault.
    """
    if not isinstance(obj, dict):
        raise ImportFormatError("a bench row must be a JSON object", path=path, line=line)
    name = bench if bench is not None else obj.get("bench")
    if name is None:
        raise ImportFormatError("missing (or pass --bench)", path=path, line=line, field="bench")
    validate_bench_name(name, path=path, line=line)
    task_id = obj.get("task_id")
    if not (isinstance(task_id, str) or is_integer(task_id)) or str(task_id) == "":
        raise ImportFormatError("missing or not a string", path=path, line=line, field="task_id")
    passed = obj.get("passed")
    if not isinstance(passed, bool):
        raise ImportFormatError(f"expected true or false, got {passed!r}", path=path, line=line, field="passed")
    error = obj.get("error")
    if error is not None and not isinstance(error, str):
        error = str(error)
    sample = obj.get("sample", 0)
    if not is_integer(sample) or not 0 <= sample <= MAX_SAMPLE:
        raise ImportFormatError(
            f"expected an integer from 0 to {MAX_SAMPLE}, got {sample!r}", path=path, line=line, field="sample"
        )
    scores = obj.get("scores")
    if scores is not None:
        if not isinstance(scores, dict):
            raise ImportFormatError("expected an object of category scores", path=path, line=line, field="scores")
        scores = {str(k): _finite_or_none(v, path=path, line=line, field=f"scores.{k}") for k, v in scores.items()}
    extras = {key: obj[key] for key in EXTRA_FIELDS if isinstance(obj.get(key), str)}
    judge = _judge_fields(obj, path=path, line=line)
    row = bench_row(
        run,
        name,
        str(task_id),
        passed,
        error=error,
        score=_finite_or_none(obj.get("score"), path=path, line=line, field="score"),
        scores=scores,
        sample=sample,
        latency_ms=_finite_or_none(obj.get("latency_ms"), path=path, line=line, field="latency_ms"),
        **extras,
    )
    row.update(judge)
    return row


__all__ = [
    "EXTRA_FIELDS",
    "JUDGE_ERROR",
    "JUDGE_FIELDS",
    "ROW_FIELDS",
    "bench_row",
    "check_row",
    "is_valid_bench_name",
    "is_valid_run_name",
    "validate_bench_name",
]
