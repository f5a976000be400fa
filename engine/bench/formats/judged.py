"""Judged results another script wrote (Foundry style): one response and its judge verdict per line.

A line carries a task id (``task_id``, ``id`` or ``prompt_id``), optionally ``category``,
``prompt``, the model's answer (``response``, ``completion`` or ``answer``), ``sample`` and
``repeat``, and the judge's verdict under ``judge`` / ``judgment`` / ``judge_response`` /
``evaluation``: an object, or the judge's raw text, parsed with the same repair as ``bench judge``
(fences, prose, missing commas, PT-BR decimal commas). The components are the campaign's
``[judge] weights``; the row's ``score`` is their weighted average and the judge's own overall is
kept as ``judge_overall``. A verdict without every component is imported as a judge error
(``scores`` null, left out of the means, never a 0). ``--format auto`` picks this format for a
line with an id and a verdict key; lines whose scores sit at top level need ``--format judged``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.bench.formats.common import Sink, bench_name, iter_objects, task_id_of
from engine.bench.judge_parse import VerdictError, parse_verdict, weighted_overall
from engine.bench.rows import JUDGE_ERROR, MAX_SAMPLE, bench_row
from engine.store.numbers import is_integer

NAME = "judged"
DEFAULT_BENCH = "judged"
ID_KEYS = ("task_id", "id", "prompt_id")
_ANSWER_KEYS = ("response", "completion", "answer")
VERDICT_KEYS = ("judge", "judgment", "judge_response", "evaluation", "verdict")
# A line's (sample, repeat) is the row's sample ``sample * REPEATS + repeat``: one number per pair (so
# sample 1 and sample 0's repeat 1 never collide), within the bench layer's 32-bit sample column.
REPEATS = 1000
MAX_ANSWER = (MAX_SAMPLE - (REPEATS - 1)) // REPEATS


def _count_problem(name: str, value: Any, top: int) -> tuple[str, str] | None:
    if is_integer(value) and 0 <= value <= top:
        return None
    return name, f"must be an integer from 0 to {top}, got {repr(value)[:40]}"


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for key in keys:
        if obj.get(key) is not None:
            return key, obj[key]
    return None, None


def _verdict_row(obj: dict[str, Any], weights: dict[str, float]) -> tuple[dict[str, Any], str | None]:
    """The judge's fields for a row, and the parse error when the verdict lacks a component."""
    key, verdict = _first(obj, VERDICT_KEYS)
    if verdict is None:
        # A line whose scores sit at top level is its own verdict (``{"id": .., "voice": 8, ...}``).
        verdict = obj
    text = verdict if isinstance(verdict, str) else json.dumps(verdict)
    try:
        parsed = parse_verdict(text, sorted(weights))
    except VerdictError as exc:
        return {"scores": None, "score": None, "judge_overall": None, "critical_failures": []}, str(exc)
    fields = {
        "scores": parsed.scores,
        "score": weighted_overall(parsed.scores, weights),
        "judge_overall": parsed.judge_overall,
        "critical_failures": parsed.critical_failures,
    }
    return fields, None


def parse(path: Path, sink: Sink, *, run: str, bench: str | None) -> None:
    """Add one judged row per line; a line without a task id is skipped with its reason."""
    weights = sink.judge_weights
    if not weights:
        raise sink.error("--format judged needs [judge] weights in campaign.toml (the rubric's components)")
    name = bench or bench_name(path.name.split(".")[0], fallback=DEFAULT_BENCH)
    for lineno, obj in iter_objects(path, sink):
        id_key, raw_id = _first(obj, ID_KEYS)
        task_id = task_id_of(raw_id)
        if task_id is None:
            why = "missing (task_id, id or prompt_id)" if id_key is None else "must be a non-empty string or an integer"
            sink.skip(sink.error(why, line=lineno, field=id_key or "task_id"))
            continue
        sample, repeat = obj.get("sample", 0), obj.get("repeat", 0)
        problem = _count_problem("sample", sample, MAX_ANSWER) or _count_problem("repeat", repeat, REPEATS - 1)
        if problem is not None:
            sink.skip(sink.error(problem[1], line=lineno, field=problem[0]))
            continue
        fields, error = _verdict_row(obj, weights)
        critical = fields["critical_failures"]
        message = (
            JUDGE_ERROR + error if error else ("judge: critical failure: " + "; ".join(critical) if critical else None)
        )
        _, answer = _first(obj, _ANSWER_KEYS)
        row = bench_row(
            run, name, task_id, error is None and not critical, error=message, score=fields["score"],
            scores=fields["scores"], sample=sample * REPEATS + repeat,
            category=obj.get("category") if isinstance(obj.get("category"), str) else None,
            prompt=obj.get("prompt") if isinstance(obj.get("prompt"), str) else None,
            completion=answer if isinstance(answer, str) else None,
        )  # fmt: skip
        row["judge_overall"] = fields["judge_overall"]
        row["critical_failures"] = critical
        row["answer"], row["repeat"] = sample, repeat
        sink.add(row, line=lineno)
