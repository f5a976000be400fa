"""The training worker's console: runs/<run>/worker.log, kept size-capped and served by its tail.

The worker's stdout and stderr go to worker.log (Supervisor._launch). At each launch, a log over
``LOG_CAP`` bytes is first renamed to worker.log.1 (replacing the previous one), so a run keeps at
most its current log plus one older one; a single launch's output is not cut while it runs.
``GET /runs/{run}/console?tail=N`` answers its last N lines as text, read backwards from the end
in blocks, so a large log costs what its tail costs. The run stream does not carry it: the TUI polls.
"""

from __future__ import annotations

import os
from pathlib import Path

LOG_CAP = 8 * 1024 * 1024
BLOCK = 65536


def rotate_if_over(log: Path, cap: int = LOG_CAP) -> bool:
    """Rename ``log`` to ``<log>.1`` when it is larger than ``cap`` bytes; whether it did."""
    try:
        if log.stat().st_size <= cap:
            return False
        os.replace(log, log.with_name(log.name + ".1"))
    except FileNotFoundError:
        return False
    return True


def tail_lines(log: Path, count: int) -> str:
    """The last ``count`` lines of ``log`` (an unfinished last line included), "" when there is none."""
    data = b""
    try:
        with open(log, "rb") as handle:
            position = handle.seek(0, os.SEEK_END)
            # count + 1 newlines make the first kept line whole (or the file's start is reached).
            while position > 0 and data.count(b"\n") <= count:
                step = min(BLOCK, position)
                position -= step
                handle.seek(position)
                data = handle.read(step) + data
    except FileNotFoundError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines(keepends=True)
    return "".join(lines[-count:]) if count > 0 else ""
