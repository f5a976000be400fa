"""Exports from the Monitor: a chart's buckets as CSV, the screen as SVG, into the campaign's exports/.

A file appears whole or not at all, and never replaces one that is there: it is written under a
temporary name in the same folder, then hard-linked to its name (``os.link`` refuses an existing
name, atomically), and the temporary name removed.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import time
from pathlib import Path

from tui.series import Bucket

CSV_COLUMNS = ("run", "metric", "first_step", "last_step", "first_ts", "last_ts", "min", "max", "last", "count")


class ExportRefused(Exception):
    """The export's file exists already (nothing was written), or the folder cannot be written."""


def export_name(what: str, metric: str, when: float, suffix: str) -> str:
    """``<run>-<metric>-<YYYYmmdd-HHMMSS>.<suffix>``, with anything unsafe in a file name replaced."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{what}-{metric}").strip("._") or "export"
    return f"{safe}-{stamp}.{suffix}"


def csv_text(metric: str, traces: list[tuple[str, list[Bucket]]]) -> str:
    """The header, then one row per bucket of each run, in drawing order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for run, buckets in traces:
        for b in buckets:
            writer.writerow(
                (run, metric, b.first_step, b.last_step, _blank(b.first_ts), _blank(b.last_ts))
                + (repr(b.low), repr(b.high), repr(b.last), b.count)
            )
    return out.getvalue()


def _blank(value: float | None) -> str:
    return "" if value is None else repr(value)


def write_new(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, which must not exist; ``ExportRefused`` says why not."""
    temp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0o666 and the umask, as a plain open would make it (mkstemp's 0600 is not what anyone meant).
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise ExportRefused(f"cannot write in {path.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.link(temp, path)
    except FileExistsError:
        raise ExportRefused(f"{path} exists already: not overwritten") from None
    except OSError as exc:
        raise ExportRefused(f"cannot write {path}: {exc.strerror}") from None
    finally:
        os.unlink(temp)
    return path
