"""tunedeck's own format: JSONL of canonical rows (DESIGN.md "Canonical bench row").

For results a user's own script wrote. ``check_row`` validates each line; the ``run`` a line
names is replaced by the run being imported into, and ``--bench`` replaces its bench.
"""

from __future__ import annotations

from pathlib import Path

from engine.bench.formats.common import Sink, iter_objects
from engine.bench.rows import check_row
from engine.errors import ImportFormatError

NAME = "tunedeck"


def parse(path: Path, sink: Sink, *, run: str, bench: str | None) -> None:
    """Add each valid row of ``path``; a row that fails ``check_row`` is skipped with its reason."""
    for lineno, obj in iter_objects(path, sink):
        try:
            row = check_row(obj, run=run, bench=bench, path=str(path), line=lineno)
        except ImportFormatError as exc:
            sink.skip(exc)
            continue
        sink.add(row, line=lineno)
