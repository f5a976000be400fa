"""Is the process a pid file names still the one that wrote it?

A pid alone is not an identity: the kernel recycles pids, so after a reboot or a long
idle a recorded pid can belong to an unrelated process. A process's start time (field 22
of ``/proc/<pid>/stat``, in clock ticks since boot) never changes while it lives and is
unique for a pid at any moment, so (pid, start time) names one process for good. Records
written by the reaper carry both; older records without a start time fall back to a
command-line check.
"""

from __future__ import annotations

import os
from pathlib import Path

# Fields of /proc/<pid>/stat after the ")" that closes the command name (which may hold spaces):
# index 0 is field 3 (state), so field 22 (starttime) is index 19.
_STATE, _START_TIME = 0, 19


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()


def process_start_time(pid: int) -> int | None:
    """The start time of a live process in clock ticks since boot; None when unknown (no /proc)."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) <= _START_TIME:
        return None
    try:
        return int(fields[_START_TIME])
    except ValueError:
        return None


def is_alive(pid: int, started: int | None = None) -> bool:
    """True when ``pid`` is alive, not a zombie, and — given ``started`` — the same process.

    Without a start time, the process must at least run one of our modules (a worker,
    reaper or engine): the weaker check that older pid records allow.
    """
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        # PermissionError: alive but another user's, so not a process of ours.
        return False
    fields = _stat_fields(pid)
    if fields is None:
        return True  # no /proc (not Linux): the signal check is all there is
    if fields and fields[_STATE] == "Z":  # a zombie has ended
        return False
    if started is not None:
        return process_start_time(pid) == started
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"engine." in cmdline or b"torch.distributed.run" in cmdline
