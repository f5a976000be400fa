"""Bench suites: the JSONL files ``tunedeck bench run`` generates on and scores.

One line is one task::

    {"task_id": "rev/1", "prompt": "reverse: a b c\\n", "expected": "c b a"}
    {"task_id": "HumanEval/0", "prompt": "def f(x):\\n", "tests": "def check(f): ...", "entry_point": "f"}
    {"task_id": "sent/3", "messages": [{"role": "user", "content": "..."}], "json_fields": {"label": "pos"}}

``prompt`` (text the completion continues) or ``messages`` (a chat, rendered with the model's
template; the model answers the last message) is required, and exactly one scorer:
``expected`` (exact match after stripping), ``tests`` (Python run in the sandbox) or
``json_fields`` (fields of a JSON object in the completion). ``bench`` defaults to the file's
stem. Everything is checked before a model is loaded, so a typo on line 37 costs a second,
not a model load, and the error names the file, the line and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.bench.rows import is_valid_bench_name, validate_bench_name
from engine.errors import ImportFormatError, NotFoundError
from engine.store.jsonl import scan_jsonl
from engine.store.numbers import is_finite_number, is_integer

SCORERS = ("expected", "tests", "json_fields")
_ROLES = frozenset({"system", "user", "assistant", "tool"})
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 600.0
MAX_NEW_TOKENS = 8192


@dataclass(frozen=True)
class SuiteRow:
    """One validated suite task; exactly one of ``expected``, ``tests``, ``json_fields`` is set."""

    lineno: int
    bench: str
    task_id: str
    prompt: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None
    expected: str | None = None
    tests: str | None = None
    json_fields: dict[str, Any] | None = None
    entry_point: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    category: str | None = None
    max_new_tokens: int | None = None

    @property
    def scorer(self) -> str:
        if self.expected is not None:
            return "expected"
        return "tests" if self.tests is not None else "json_fields"

    @property
    def prompt_text(self) -> str:
        """The prompt as one string (a chat's last message), for ``tests`` programs and bench rows."""
        if self.prompt is not None:
            return self.prompt
        assert self.messages is not None
        return self.messages[-1][1]


def _fail(message: str, path: Path, line: int, field: str | None = None) -> ImportFormatError:
    return ImportFormatError(message, path=path, line=line, field=field)


def _string(record: dict[str, Any], key: str, path: Path, line: int, *, required: bool = False) -> str | None:
    value = record.get(key)
    if value is None:
        if required:
            raise _fail("missing (every suite row needs one)", path, line, key)
        return None
    if not isinstance(value, str):
        raise _fail(f"must be a string, got {type(value).__name__}", path, line, key)
    return value


def _messages(value: Any, path: Path, line: int) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise _fail("must be a non-empty list of {role, content} objects", path, line, "messages")
    parsed = []
    for index, message in enumerate(value):
        field = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _fail("must be an object with role and content", path, line, field)
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES:
            raise _fail(f"unknown role {role!r}", path, line, f"{field}.role")
        if not isinstance(content, str):
            raise _fail("must be a string", path, line, f"{field}.content")
        parsed.append((role, content))
    if parsed[-1][0] == "assistant":
        # A suite row is a question: the model writes the assistant's answer.
        raise _fail("the last message is the one the model answers; it must not be the assistant's", path, line)
    return tuple(parsed)


def _positive_number(value: Any, path: Path, line: int, field: str, *, upper: float) -> float:
    if not is_finite_number(value):
        raise _fail(f"must be a number, got {value!r}", path, line, field)
    if not 0 < value <= upper:
        raise _fail(f"must be > 0 and <= {upper:g}, got {value!r}", path, line, field)
    return float(value)


def parse_suite_row(record: Any, *, default_bench: str | None, path: Path, line: int) -> SuiteRow:
    """Validate one suite record (a parsed JSON value) into a ``SuiteRow``."""
    if not isinstance(record, dict):
        raise _fail("a suite row must be a JSON object", path, line)
    task_id = record.get("task_id")
    if is_integer(task_id):
        task_id = str(task_id)
    if not isinstance(task_id, str) or not task_id.strip():
        raise _fail("missing or not a non-empty string", path, line, "task_id")

    bench = record.get("bench", default_bench)
    if bench is None:
        raise _fail("missing, and the file name cannot serve as a bench name", path, line, "bench")
    validate_bench_name(bench, path=str(path), line=line)

    prompt = _string(record, "prompt", path, line)
    messages = _messages(record["messages"], path, line) if record.get("messages") is not None else None
    if (prompt is None) == (messages is None):
        raise _fail("give exactly one of 'prompt' (text) or 'messages' (a chat)", path, line, "prompt")

    present = [key for key in SCORERS if record.get(key) is not None]
    if len(present) != 1:
        found = ", ".join(present) if present else "none"
        raise _fail(f"exactly one scorer is needed: expected, tests or json_fields (found: {found})", path, line)
    expected = _string(record, "expected", path, line)
    tests = _string(record, "tests", path, line)
    if tests is not None and not tests.strip():
        raise _fail("is empty", path, line, "tests")
    json_fields = record.get("json_fields")
    if json_fields is not None and (not isinstance(json_fields, dict) or not json_fields):
        raise _fail("must be a non-empty object of expected field values", path, line, "json_fields")

    entry_point = _string(record, "entry_point", path, line)
    if entry_point is not None:
        if tests is None:
            raise _fail("only means something with 'tests' (HumanEval style)", path, line, "entry_point")
        if not entry_point.isidentifier():
            raise _fail(f"{entry_point!r} is not a Python identifier", path, line, "entry_point")

    timeout = record.get("timeout_s")
    max_new = record.get("max_new_tokens")
    if max_new is not None and not is_integer(max_new):
        raise _fail(f"must be an integer, got {max_new!r}", path, line, "max_new_tokens")
    return SuiteRow(
        lineno=line,
        bench=bench,
        task_id=task_id,
        prompt=prompt,
        messages=messages,
        expected=expected,
        tests=tests,
        json_fields=json_fields,
        entry_point=entry_point,
        timeout_s=DEFAULT_TIMEOUT_S
        if timeout is None
        else _positive_number(timeout, path, line, "timeout_s", upper=MAX_TIMEOUT_S),
        category=_string(record, "category", path, line),
        max_new_tokens=None
        if max_new is None
        else int(_positive_number(max_new, path, line, "max_new_tokens", upper=MAX_NEW_TOKENS)),
    )


def load_suite(path: str | Path) -> list[SuiteRow]:
    """Every row of a suite file, validated; one ``ImportFormatError`` at the first problem.

    Unknown keys are ignored (HumanEval-style files carry ``canonical_solution`` and the like).
    Unlike the run's own JSONL logs, a torn last line is an error here: a suite is written by a
    person, never by a process that may be killed mid-line.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError("suite file not found", path=path)
    default_bench = path.stem if is_valid_bench_name(path.stem) else None
    rows: list[SuiteRow] = []
    seen: dict[tuple[str, str], int] = {}
    for item in scan_jsonl(path):
        if item.record is None:
            raise _fail(item.error or "expected a JSON object", path, item.lineno)
        record, lineno = item.record, item.lineno
        row = parse_suite_row(record, default_bench=default_bench, path=path, line=lineno)
        key = (row.bench, row.task_id)
        if key in seen:
            raise _fail(
                f"duplicate task {row.task_id!r} in bench {row.bench!r} (first on line {seen[key]})",
                path,
                lineno,
                "task_id",
            )
        seen[key] = lineno
        rows.append(row)
    if not rows:
        raise _fail("the suite has no rows", path, 1)
    return rows
