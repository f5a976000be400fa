"""Training rows: read and validated without torch, so bad data is caught before a launch.

A row is ``{"prompt", "completion"}`` or ``{"messages": [{"role", "content"}, ...]}`` (the
last assistant message is the target), with optional ``weight``, ``class`` and ``task_id``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import DatasetError
from engine.store.config import ReplicateRule, WeightPolicy, WeightRule
from engine.store.jsonl import iter_jsonl
from engine.store.numbers import is_finite_number

# A training row is a prompt and an answer, not a corpus: a 50 MB line once passed validation and
# then took a worker past 11 GB of memory before it aborted. 4 Mi characters is ~1M tokens.
MAX_ROW_CHARS = 4 * 1024 * 1024

_ROLES = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True)
class Row:
    """One validated training row."""

    lineno: int
    prompt: str | None = None
    completion: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None
    weight: float | None = None
    row_class: str | None = None
    task_id: str | None = None


@dataclass(frozen=True)
class PreferenceRow:
    """One validated preference row (DPO, ORPO, KTO, CPO): a prompt, or a conversation, and two answers."""

    lineno: int
    chosen: str
    rejected: str
    prompt: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None
    row_class: str | None = None
    task_id: str | None = None


@dataclass(frozen=True)
class PromptRow:
    """One validated GRPO row: a prompt (or conversation) and every other field, for the reward functions."""

    lineno: int
    fields: dict[str, Any]
    prompt: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None
    row_class: str | None = None
    task_id: str | None = None


AnyRow = TypeVar("AnyRow", "Row", "PreferenceRow", "PromptRow")


def _string_field(record: dict[str, Any], key: str, path: Path, lineno: int) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise DatasetError(f"must be a string, got {type(value).__name__}", path=path, line=lineno, field=key)
    return value


def _parse_messages(
    value: Any, path: Path, lineno: int, *, ends_with_answer: bool = True
) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise DatasetError("must be a non-empty list", path=path, line=lineno, field="messages")
    parsed: list[tuple[str, str]] = []
    for index, message in enumerate(value):
        field = f"messages[{index}]"
        if not isinstance(message, dict):
            raise DatasetError("must be an object with role and content", path=path, line=lineno, field=field)
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES:
            raise DatasetError(f"unknown role {role!r}", path=path, line=lineno, field=f"{field}.role")
        if not isinstance(content, str):
            raise DatasetError("must be a string", path=path, line=lineno, field=f"{field}.content")
        parsed.append((role, content))
    if ends_with_answer and parsed[-1][0] != "assistant":
        raise DatasetError("the last message must be the assistant's", path=path, line=lineno, field="messages")
    if not ends_with_answer and parsed[-1][0] == "assistant":
        raise DatasetError(
            "is the prompt: the answer goes elsewhere, so it must not end with the assistant's message",
            path=path,
            line=lineno,
            field="messages",
        )
    return tuple(parsed)


def parse_row(record: dict[str, Any], path: Path, lineno: int) -> Row:
    """Validate one dataset record."""
    weight = record.get("weight")
    if weight is not None and (not is_finite_number(weight) or weight < 0):
        raise DatasetError(f"must be a number >= 0, got {weight!r}", path=path, line=lineno, field="weight")
    row = Row(
        lineno=lineno,
        weight=None if weight is None else float(weight),
        row_class=_string_field(record, "class", path, lineno),
        task_id=_string_field(record, "task_id", path, lineno),
    )
    if "messages" in record:
        return dataclasses.replace(row, messages=_parse_messages(record["messages"], path, lineno))
    prompt = _string_field(record, "prompt", path, lineno)
    completion = _string_field(record, "completion", path, lineno)
    if prompt is None or completion is None:
        missing = "prompt" if prompt is None else "completion"
        raise DatasetError(
            "missing (rows need prompt and completion, or messages)", path=path, line=lineno, field=missing
        )
    return dataclasses.replace(row, prompt=prompt, completion=completion)


def load_rows(path: Path, *, source: Path | None = None, field: str = "dataset") -> list[Row]:
    """All rows of a dataset file; a missing file or bad line is one ``DatasetError``."""
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}", path=source, field=field)
    rows = [
        parse_row(line.record, path, line.lineno)
        for line in iter_jsonl(path, max_line_chars=MAX_ROW_CHARS, finished=True)
    ]
    if not rows:
        raise DatasetError("dataset has no rows", path=path)
    return rows


def _prompt_or_messages(
    record: dict[str, Any], path: Path, lineno: int, wanted: str
) -> tuple[str | None, tuple[tuple[str, str], ...] | None]:
    """A row's ``prompt`` string or ``messages`` conversation (the turns before the answer)."""
    if "weight" in record:
        raise DatasetError(
            "per-row loss weights apply to sft runs only; remove it", path=path, line=lineno, field="weight"
        )
    if "messages" in record:
        return None, _parse_messages(record["messages"], path, lineno, ends_with_answer=False)
    prompt = _string_field(record, "prompt", path, lineno)
    if prompt is None:
        raise DatasetError(f"missing ({wanted})", path=path, line=lineno, field="prompt")
    return prompt, None


def parse_preference_row(record: dict[str, Any], path: Path, lineno: int) -> PreferenceRow:
    """Validate one preference record: ``prompt`` (or ``messages``), ``chosen`` and ``rejected`` strings."""
    wanted = "preference rows need prompt (or messages), chosen and rejected"
    prompt, messages = _prompt_or_messages(record, path, lineno, wanted)
    answers = {}
    for key in ("chosen", "rejected"):
        value = _string_field(record, key, path, lineno)
        if value is None:
            raise DatasetError(f"missing ({wanted})", path=path, line=lineno, field=key)
        if not value.strip():
            # An empty answer is a pair that teaches "say nothing" (or "never say nothing"): a broken row.
            raise DatasetError("is empty: a preference pair needs two answers", path=path, line=lineno, field=key)
        answers[key] = value
    if answers["chosen"] == answers["rejected"]:
        raise DatasetError(
            "is the same text as chosen: the pair teaches nothing", path=path, line=lineno, field="rejected"
        )
    return PreferenceRow(
        lineno=lineno,
        prompt=prompt,
        messages=messages,
        row_class=_string_field(record, "class", path, lineno),
        task_id=_string_field(record, "task_id", path, lineno),
        **answers,
    )


# What a reward function's column must hold: "text" (a string), "object" (a JSON object), "any";
# "task" is the run's task field: absent, or a name (a string or an integer).
ColumnKind = str


def parse_prompt_row(record: dict[str, Any], path: Path, lineno: int, columns: dict[str, ColumnKind]) -> PromptRow:
    """Validate one GRPO record: ``prompt`` (or ``messages``) plus every column a reward reads."""
    prompt, messages = _prompt_or_messages(record, path, lineno, "GRPO rows need prompt or messages")
    for column, kind in columns.items():
        value = record.get(column)
        if kind == "task":
            if value is not None and not (isinstance(value, str) and value.strip() or type(value) is int):
                why = f"must be a task name (a string or an integer), got {json.dumps(value)[:60]}"
                raise DatasetError(why, path=path, line=lineno, field=column)
            continue
        if value is None:
            raise DatasetError("missing (a reward function of this run reads it)", path=path, line=lineno, field=column)
        if kind == "text" and not isinstance(value, str):
            raise DatasetError(f"must be a string, got {type(value).__name__}", path=path, line=lineno, field=column)
        if kind == "object" and not isinstance(value, dict):
            raise DatasetError(
                f"must be a JSON object of the expected fields, got {type(value).__name__}",
                path=path,
                line=lineno,
                field=column,
            )
    fields = {k: v for k, v in record.items() if k not in ("prompt", "messages")}
    return PromptRow(
        lineno=lineno,
        fields=fields,
        prompt=prompt,
        messages=messages,
        row_class=_string_field(record, "class", path, lineno),
        task_id=_string_field(record, "task_id", path, lineno),
    )


def load_method_rows(
    path: Path,
    method: str,
    *,
    columns: dict[str, ColumnKind] | None = None,
    source: Path | None = None,
    field: str = "dataset",
) -> list[Row] | list[PreferenceRow] | list[PromptRow]:
    """A dataset read as ``method`` trains on it: SFT rows, preference rows, or GRPO prompt rows."""
    if method == "sft":
        return load_rows(path, source=source, field=field)
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}", path=source, field=field)
    lines = iter_jsonl(path, max_line_chars=MAX_ROW_CHARS, finished=True)
    rows: list[PreferenceRow] | list[PromptRow]
    if method == "grpo":
        rows = [parse_prompt_row(line.record, path, line.lineno, columns or {}) for line in lines]
    else:
        rows = [parse_preference_row(line.record, path, line.lineno) for line in lines]
    if not rows:
        raise DatasetError("dataset has no rows", path=path)
    return rows


def _matches(selector_class: str | None, selector_task: str | None, row: Row | PreferenceRow | PromptRow) -> bool:
    if selector_class is not None and row.row_class != selector_class:
        return False
    return selector_task is None or (row.task_id is not None and fnmatch.fnmatchcase(row.task_id, selector_task))


def rule_matches(rule: WeightRule, row: Row, completion_tokens: int) -> bool:
    """Whether every condition of ``rule`` holds for ``row``."""
    if not _matches(rule.row_class, rule.task_id, row):
        return False
    if rule.min_tokens is not None and completion_tokens <= rule.min_tokens:
        return False
    return rule.max_tokens is None or completion_tokens <= rule.max_tokens


def row_weight(policy: WeightPolicy, row: Row, completion_tokens: int) -> float:
    """The loss weight of a row: its own ``weight``, else the first matching rule, else the default."""
    if row.weight is not None:
        return row.weight
    for rule in policy.rules:
        if rule_matches(rule, row, completion_tokens):
            return rule.weight
    return policy.default


def replicate(rows: Sequence[AnyRow], rules: list[ReplicateRule], seed: int) -> list[AnyRow]:
    """Oversample rows matched by a rule: ``factor`` copies, a fractional part drawn with ``seed``."""
    if not rules:
        return list(rows)
    rng = random.Random(seed)
    out: list[AnyRow] = []
    for row in rows:
        rule = next((r for r in rules if _matches(r.row_class, r.task_id, row)), None)
        if rule is None:
            out.append(row)
            continue
        copies = int(rule.factor)
        if rng.random() < rule.factor - copies:
            copies += 1
        out.extend([row] * copies)
    return out


def split_eval(rows: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """Hold out ``fraction`` of the rows (seeded) as an eval split; returns (train, eval)."""
    if fraction <= 0:
        return rows, []
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(rows) * fraction))
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]
