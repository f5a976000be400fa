"""Scoring one completion against a suite row: exact match, Python tests, or JSON fields.

Every scorer returns ``(passed, error)``, where ``error`` is one line saying why a row failed
(``None`` when it passed). The JSON extraction is deliberately forgiving about *format*:
the V4.1 campaign lost its reward signal because a strict ``json.loads`` scored correct
Portuguese answers (``"sentiment_score": 4,5``) as failures. A model is judged on the values
it gives, not on whether it wrapped them in a code fence or a sentence.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from engine.bench.sandbox import Program, run_program, run_programs
from engine.bench.suite import SuiteRow
from engine.store.numbers import is_number

Score = tuple[bool, str | None]
_SHOWN = 80  # characters of a completion quoted in an error
_MAX_STARTS = 64  # "{" positions tried before giving up on a completion

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
# A PT-BR decimal in an object value position: `: 4,5` followed by `,` or `}`. Only tried when
# the text is not valid JSON as it stands, so `[1,2,3]` and `{"a": 1,"b": 2}` never change.
_PT_DECIMAL = re.compile(r"(:\s*-?\d+),(\d+)(?=\s*(?:[,}]|$))")


def _short(text: str) -> str:
    text = text.strip()
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def score_expected(completion: str, expected: str) -> Score:
    """Exact match after stripping surrounding whitespace."""
    if completion.strip() == expected.strip():
        return True, None
    return False, f"expected {_short(expected)}, got {_short(completion)}"


# --- Python tests ---------------------------------------------------------------------------


def extract_code(completion: str) -> str:
    """The first fenced code block of a chat answer (a ``python`` one preferred), else the text."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(completion)]
    for lang, body in blocks:
        if lang in ("python", "py", "python3"):
            return body
    return blocks[0][1] if blocks else completion


def make_tests_program(prompt: str, completion: str, tests: str, *, entry_point: str | None = None) -> str:
    """The program a ``tests`` row runs.

    With ``entry_point`` it is HumanEval's own: prompt + completion + tests + ``check(entry_point)``.
    Without, ``prompt`` and ``completion`` are string variables the tests can assert on, e.g.
    ``assert completion.strip() == "c b a"``.
    """
    if entry_point is not None:
        return f"{prompt}{completion}\n{tests}\ncheck({entry_point})\n"
    return f"prompt = {prompt!r}\ncompletion = {completion!r}\n{tests}\n"


def row_program(row: SuiteRow, completion: str) -> Program:
    """The sandbox program for a ``tests`` row (a chat answer's code is taken out of its fence)."""
    assert row.tests is not None
    if row.entry_point is not None and row.messages is not None:
        source = make_tests_program("", extract_code(completion), row.tests, entry_point=row.entry_point)
    else:
        source = make_tests_program(row.prompt_text, completion, row.tests, entry_point=row.entry_point)
    return Program(source, row.timeout_s)


def score_tests(
    prompt: str, completion: str, tests: str, *, entry_point: str | None = None, timeout_s: float = 10.0
) -> Score:
    """Run the tests in the sandbox: passed when the program exits 0 within ``timeout_s``."""
    result = run_program(make_tests_program(prompt, completion, tests, entry_point=entry_point), timeout_s=timeout_s)
    return result.passed, result.error


# --- JSON fields ----------------------------------------------------------------------------


def _outside_strings(text: str, change: Callable[[str], str]) -> str:
    """Apply ``change`` to the parts of ``text`` that are not inside JSON string literals."""
    out: list[str] = []
    start = 0
    i = 0
    while i < len(text):
        if text[i] == '"':
            out.append(change(text[start:i]))
            j = i + 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = start = j + 1
        else:
            i += 1
    out.append(change(text[start:]))
    return "".join(out)


def _without_trailing_commas(text: str) -> str:
    return _outside_strings(text, lambda part: _TRAILING_COMMA.sub(r"\1", part))


def _with_dot_decimals(text: str) -> str:
    return _outside_strings(text, lambda part: _PT_DECIMAL.sub(r"\1.\2", part))


def _loads_object(text: str) -> dict[str, Any] | None:
    """``text`` as a JSON object: as is, without trailing commas, then with PT-BR decimals fixed."""
    for attempt in (text, _without_trailing_commas(text), _without_trailing_commas(_with_dot_decimals(text))):
        try:
            value = json.loads(attempt, strict=False)  # strict=False: raw newlines inside strings
        except (json.JSONDecodeError, RecursionError):
            continue
        return value if isinstance(value, dict) else None
    return None


def _balanced_end(text: str, start: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``start`` (braces inside strings ignored)."""
    depth = 0
    in_string = False
    i = start
    while i < len(text):
        char = text[i]
        if in_string:
            if char == "\\":
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _first_object(text: str) -> dict[str, Any] | None:
    starts = [m.start() for m in re.finditer(r"\{", text)][:_MAX_STARTS]
    for start in starts:
        end = _balanced_end(text, start)
        if end is None:
            continue
        value = _loads_object(text[start : end + 1])
        if value is not None:
            return value
    return None


def extract_json_object(completion: str) -> dict[str, Any] | None:
    """The first JSON object in a completion, or None.

    Looks inside fenced code blocks first (``json`` ones, then any), then in the whole text;
    takes the first balanced ``{...}`` that parses, tolerating prose around it, single
    trailing commas and PT-BR decimal commas in values.
    """
    fences = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(completion)]
    candidates = [body for lang, body in fences if lang in ("json", "jsonc", "json5")]
    candidates += [body for lang, body in fences if lang not in ("json", "jsonc", "json5")]
    candidates.append(completion)
    for candidate in candidates:
        value = _first_object(candidate)
        if value is not None:
            return value
    return None


def _mismatch(want: Any, got: Any, field: str) -> str | None:
    """Why ``got`` does not match ``want`` at ``field`` (None when it does)."""
    if is_number(want):
        ok = is_number(got) and math.isclose(float(got), float(want), rel_tol=1e-6, abs_tol=1e-9)
    elif isinstance(want, str):
        ok = isinstance(got, str) and got.strip() == want.strip()
    elif isinstance(want, dict):
        if not isinstance(got, dict):
            return f"{field}: expected an object, got {json.dumps(got)[:_SHOWN]}"
        for key, value in want.items():
            if key not in got:
                return f"{field}.{key}: missing"
            problem = _mismatch(value, got[key], f"{field}.{key}")
            if problem:
                return problem
        return None
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            ok = False
        else:
            for index, (w, g) in enumerate(zip(want, got, strict=True)):
                problem = _mismatch(w, g, f"{field}[{index}]")
                if problem:
                    return problem
            return None
    else:  # true, false, null
        ok = got is want
    if ok:
        return None
    return f"{field}: expected {json.dumps(want)[:_SHOWN]}, got {json.dumps(got)[:_SHOWN]}"


def score_json_fields(completion: str, fields: dict[str, Any]) -> Score:
    """Passed when the completion holds a JSON object whose fields match ``fields``.

    Numbers match within a relative 1e-6; strings match after stripping (case counts); nested
    objects are matched field by field (extra fields are fine), lists element by element.
    """
    value = extract_json_object(completion)
    if value is None:
        return False, f"no JSON object in the completion {_short(completion)}"
    for key, want in fields.items():
        if key not in value:
            return False, f"{key}: missing (the object has: {', '.join(map(str, value))[:_SHOWN] or 'no fields'})"
        problem = _mismatch(want, value[key], key)
        if problem:
            return False, problem
    return True, None


# --- a whole suite --------------------------------------------------------------------------


def score_completions(items: Sequence[tuple[SuiteRow, str]], *, max_workers: int | None = None) -> list[Score]:
    """Score each (row, completion); the ``tests`` rows run in the sandbox in parallel."""
    scores: list[Score | None] = [None] * len(items)
    programs: list[tuple[int, Program]] = []
    for index, (row, completion) in enumerate(items):
        if row.expected is not None:
            scores[index] = score_expected(completion, row.expected)
        elif row.json_fields is not None:
            scores[index] = score_json_fields(completion, row.json_fields)
        else:
            programs.append((index, row_program(row, completion)))
    results = run_programs([program for _, program in programs], max_workers=max_workers)
    for (index, _), result in zip(programs, results, strict=True):
        scores[index] = (result.passed, result.error)
    return [score for score in scores if score is not None]
