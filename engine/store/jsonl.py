"""JSONL files that survive crashes: whole lines appended and flushed, torn tails tolerated.

Writers append one complete line per record with a single ``write`` and flush it, so a
process killed at any moment leaves at worst one torn *last* line. Readers skip a torn last
line silently (the writer may still be mid-write) but report a bad line anywhere else.
Bare ``NaN`` / ``Infinity`` are kept: HF Trainer logs them and they are real information.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from engine.errors import TunedeckError
from engine.store.atomic import current_umask
from engine.store.safe_paths import refuse_symlinks


def dumps_line(record: dict[str, Any]) -> str:
    """One record as one JSON line (NaN kept as bare ``NaN``), newline included."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=True) + "\n"


class JsonlWriter:
    """Appends whole lines to a JSONL file and flushes after each one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None

    def _handle(self) -> IO[str]:
        if self._file is None:
            self._file = open_for_append(self.path)
        return self._file

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a whole line and flush it to the OS."""
        handle = self._handle()
        handle.write(dumps_line(record))
        handle.flush()

    def close(self) -> None:
        """Close the underlying file (writing again reopens it)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_for_append(path: Path) -> IO[str]:
    """Open a JSONL file to append whole lines, after ending a torn last line if there is one.

    A process killed mid-write leaves a last line without its newline; appending straight
    after it would glue the next record onto the fragment and readers would drop both. The
    fragment is closed with a newline instead, so it stays one bad line, skipped and named,
    and the new record is whole. Never follows a symlink (``engine.store.safe_paths``).
    """
    refuse_symlinks(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_NOFOLLOW: a link swapped in after the check still cannot be followed for the file itself.
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")
        return open(fd, "a", encoding="utf-8", closefd=True)  # noqa: SIM115 - the writer keeps it open
    except BaseException:
        os.close(fd)
        raise


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append a single record to ``path`` as one whole line."""
    with JsonlWriter(path) as writer:
        writer.write(record)


@dataclass(frozen=True)
class JsonlLine:
    """A parsed line with its 1-based line number, for error messages."""

    lineno: int
    record: dict[str, Any]


def iter_jsonl(
    path: str | Path, *, strict: bool = True, max_line_chars: int | None = None, finished: bool = False
) -> Iterator[JsonlLine]:
    """Yield the object on each non-blank line of ``path``.

    A line that does not parse raises ``TunedeckError`` naming file and line, except the
    last line when it has no newline (a write torn by a crash, or one still in flight),
    which is skipped. With ``strict=False`` bad lines anywhere are skipped. A line longer than
    ``max_line_chars`` raises whatever ``strict`` says: it is a mistake, not a record to guess at.
    ``finished``: a file nobody is writing (a dataset) — a cut last line is a truncated copy and
    a byte that is not UTF-8 a damaged one, each named at its line instead of passed over.
    """
    path = Path(path)
    lines = _finished_lines(path) if finished else _lines(path)
    torn_tail_ok = not finished
    for index, raw in enumerate(lines):
        lineno = index + 1
        if not raw.strip():
            continue
        if max_line_chars is not None and len(raw) > max_line_chars:
            raise TunedeckError(
                f"line is {len(raw):,} characters, over the {max_line_chars:,} a row may hold: split or shorten it",
                path=path,
                line=lineno,
            )
        torn_tail = torn_tail_ok and index == len(lines) - 1 and not raw.endswith("\n")
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            if torn_tail or not strict:
                continue
            raise TunedeckError(f"not valid JSON ({exc.msg})", path=path, line=lineno) from None
        if not isinstance(record, dict):
            if not strict:
                continue
            raise TunedeckError("expected a JSON object", path=path, line=lineno)
        yield JsonlLine(lineno, record)


def _lines(path: Path) -> list[str]:
    # errors="replace": a crash can cut the last line inside a multi-byte character; that tail is
    # skipped like any torn line, and a stray bad byte elsewhere must not make the file unreadable.
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        return handle.readlines()


def _finished_lines(path: Path) -> list[str]:
    """The lines of a file that should be whole: a byte that is not UTF-8 is named at its line."""
    data = path.read_bytes()
    try:
        # Split as open(newline="") does (\n, \r, \r\n): str.splitlines would also cut at U+2028,
        # which json.dumps(ensure_ascii=False) leaves raw inside strings.
        return io.StringIO(data.decode("utf-8"), newline="").readlines()
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise TunedeckError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column}", path=path, line=line
        ) from None


@dataclass
class ScannedLine:
    """One non-blank line: its record, or why it is not one."""

    lineno: int
    record: dict[str, Any] | None
    error: str | None


def scan_jsonl(path: str | Path) -> Iterator[ScannedLine]:
    """Every non-blank line of ``path`` with either its object or a one-line reason it has none.

    For readers that skip bad lines but must say which ones (imports, bench files edited by
    hand): nothing is dropped silently.
    """
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                torn = "" if raw.endswith("\n") else ", a torn last line"
                yield ScannedLine(lineno, None, f"not valid JSON ({exc.msg}{torn})")
                continue
            if not isinstance(record, dict):
                yield ScannedLine(lineno, None, "expected a JSON object")
                continue
            yield ScannedLine(lineno, record, None)


def read_jsonl(path: str | Path, *, strict: bool = True) -> list[dict[str, Any]]:
    """All records of ``path`` (see ``iter_jsonl``); a missing file reads as empty."""
    if not Path(path).exists():
        return []
    return [line.record for line in iter_jsonl(path, strict=strict)]


def write_jsonl_atomic(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with ``records`` so readers see the old file or the new one, never half."""

    def write(handle: IO[str]) -> None:
        for record in records:
            handle.write(dumps_line(record))

    _replace_file(Path(path), write)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` through a temporary file and a rename."""
    _replace_file(Path(path), lambda handle: handle.write(text))


def _replace_file(path: Path, write: Callable[[IO[str]], object]) -> None:
    """Write a temporary file beside ``path`` with ``write``, sync it, and rename it over ``path``."""
    path = refuse_symlinks(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; a plain open would honour the umask
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
