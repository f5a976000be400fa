"""The reward functions tunedeck ships, each scoring one completion against one GRPO row.

They reuse the bench layer's scorers, so a reward means what a bench pass means: ``exact_match``
is bench's exact match, ``python_tests`` runs the program bench scoring runs in the same sandbox,
and ``json_fields`` reads JSON with bench's forgiving parser (code fences, prose, PT-BR decimal
commas). Every score comes with a reason when it is below 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import regex

from engine.bench.sandbox import Program, run_programs
from engine.bench.score import extract_code, extract_json_object, make_tests_program, score_expected, score_json_fields
from engine.store.datasets import PromptRow
from engine.store.method_config import DEFAULT_COLUMNS, RewardSpec

MATCH_TIMEOUT_S = 0.5  # per completion, for the format reward's pattern


@dataclass(frozen=True)
class RewardScore:
    """A reward in [0, 1] (user functions may use any finite range) and why it is not 1."""

    value: float
    reason: str | None = None


def _column(spec: RewardSpec) -> str:
    return spec.column or DEFAULT_COLUMNS[spec.fn]


def exact_match(spec: RewardSpec, completions: Sequence[str], rows: Sequence[PromptRow]) -> list[RewardScore]:
    """1 when the completion equals the row's ``column`` after stripping whitespace (bench's exact match)."""
    column = _column(spec)
    out = []
    for completion, row in zip(completions, rows, strict=True):
        passed, reason = score_expected(completion, str(row.fields[column]))
        out.append(RewardScore(1.0 if passed else 0.0, reason))
    return out


def contains(spec: RewardSpec, completions: Sequence[str], rows: Sequence[PromptRow]) -> list[RewardScore]:
    """1 when the row's ``column`` text occurs in the completion (``case_sensitive`` true by default)."""
    column, exact_case = _column(spec), spec.case_sensitive is not False
    out = []
    for completion, row in zip(completions, rows, strict=True):
        wanted = str(row.fields[column])
        found = wanted in completion if exact_case else wanted.lower() in completion.lower()
        out.append(RewardScore(1.0, None) if found else RewardScore(0.0, f"{wanted[:80]!r} not in the completion"))
    return out


def _tests_program(spec: RewardSpec, completion: str, row: PromptRow) -> Program:
    """The program bench scoring would run for this row and completion (engine.bench.score.row_program)."""
    tests = str(row.fields[_column(spec)])
    entry_point = str(row.fields[spec.entry_point_column]) if spec.entry_point_column else None
    timeout = spec.timeout_s or 10.0
    if entry_point is not None and row.messages is not None:
        return Program(make_tests_program("", extract_code(completion), tests, entry_point=entry_point), timeout)
    prompt = row.prompt if row.prompt is not None else ""
    return Program(make_tests_program(prompt, completion, tests, entry_point=entry_point), timeout)


def python_tests(spec: RewardSpec, completions: Sequence[str], rows: Sequence[PromptRow]) -> list[RewardScore]:
    """1 when the row's tests pass against the completion, run in bench's sandbox (in parallel)."""
    programs = [_tests_program(spec, c, r) for c, r in zip(completions, rows, strict=True)]
    return [RewardScore(1.0 if r.passed else 0.0, r.error) for r in run_programs(programs)]


def json_field_score(completion: str, expected: dict[str, object], *, partial: bool = True) -> RewardScore:
    """The share of ``expected``'s fields the completion's JSON object matches (all or nothing unless ``partial``).

    A completion with no JSON object scores 0 with the reason the bench parser gives.
    """
    if not expected:
        return RewardScore(1.0, None)
    if extract_json_object(completion) is None:
        return RewardScore(0.0, score_json_fields(completion, expected)[1])
    if not partial:
        passed, reason = score_json_fields(completion, expected)
        return RewardScore(1.0 if passed else 0.0, reason)
    reasons = [score_json_fields(completion, {key: value})[1] for key, value in expected.items()]
    wrong = [r for r in reasons if r is not None]
    return RewardScore(1.0 - len(wrong) / len(expected), "; ".join(wrong) or None)


def json_fields(spec: RewardSpec, completions: Sequence[str], rows: Sequence[PromptRow]) -> list[RewardScore]:
    """The share of the row's expected fields (an object in ``column``) found in the completion's JSON."""
    column, partial = _column(spec), spec.partial is not False
    return [
        json_field_score(c, dict(r.fields[column]), partial=partial) for c, r in zip(completions, rows, strict=True)
    ]


def length_score(text: str, min_chars: int, max_chars: int | None) -> RewardScore:
    """1 inside [min_chars, max_chars]; below, the share of min_chars reached; above, falling to 0 at twice max."""
    n = len(text.strip())
    if n < min_chars:
        return RewardScore(n / min_chars, f"{n} characters, fewer than {min_chars}")
    if max_chars is not None and n > max_chars:
        return RewardScore(max(0.0, 1.0 - (n - max_chars) / max_chars), f"{n} characters, more than {max_chars}")
    return RewardScore(1.0, None)


def length(spec: RewardSpec, completions: Sequence[str], rows: Sequence[PromptRow]) -> list[RewardScore]:
    """How well the completion's length (stripped characters) keeps within ``min_chars``..``max_chars``."""
    return [length_score(c, spec.min_chars or 0, spec.max_chars) for c in completions]


def format_match(spec: RewardSpec, completions: Sequence[str], rows: Sequence[PromptRow]) -> list[RewardScore]:
    """1 when the completion matches ``pattern`` (searched; the whole text with ``full_match``).

    Matched with the ``regex`` module and a time limit per completion: a pattern that backtracks
    catastrophically on some completion (``(a+)+$``) scores it 0 with the reason, instead of
    hanging the run — ``re`` has no timeout.
    """
    assert spec.pattern is not None
    pattern = regex.compile(spec.pattern, regex.DOTALL)
    match = pattern.fullmatch if spec.full_match else pattern.search
    miss = RewardScore(0.0, f"does not match {spec.pattern!r}")
    slow = RewardScore(0.0, f"matching {spec.pattern!r} took over {MATCH_TIMEOUT_S} s: the pattern backtracks")
    scores = []
    for completion in completions:
        try:
            found = match(completion.strip() if spec.full_match else completion, timeout=MATCH_TIMEOUT_S)
        except TimeoutError:
            scores.append(slow)
            continue
        scores.append(RewardScore(1.0, None) if found else miss)
    return scores


Scorer = Callable[[RewardSpec, Sequence[str], Sequence[PromptRow]], list[RewardScore]]

# The registry: the names a run.toml's [[method.rewards]] fn may use (engine.store.method_config
# lists the same names with their options, so a run is checked before any worker starts).
BUILTIN: dict[str, Scorer] = {
    "exact_match": exact_match,
    "contains": contains,
    "python_tests": python_tests,
    "json_fields": json_fields,
    "length": length,
    "format": format_match,
}
