"""How busy other processes keep the machine, so a benchmark can wait for quiet and report noise.

Shared by the scripts in tests/perf (run as ``python tests/perf/<script>.py``, so this module is
imported as a sibling). Linux only (/proc/stat); elsewhere the figures are None and nothing waits.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

# A measurement counts as undisturbed when other processes used less than this many cores on average.
QUIET_CORES = 0.25


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has been busy since boot (Linux /proc/stat); None elsewhere."""
    try:
        first = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal (guest time is already inside user).
    ticks = [int(value) for value in first[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def ours_cpu_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for (timed subprocesses)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class OtherLoad:
    """Cores other processes kept busy between ``start()`` and ``cores()``: machine busy minus ours."""

    def start(self) -> None:
        self._busy, self._ours, self._wall = busy_cpu_seconds(), ours_cpu_seconds(), time.perf_counter()

    def cores(self) -> float | None:
        busy = busy_cpu_seconds()
        if busy is None or self._busy is None:
            return None
        wall = time.perf_counter() - self._wall
        others = (busy - self._busy) - (ours_cpu_seconds() - self._ours)
        return max(others, 0.0) / wall if wall > 0 else None


def wait_for_quiet(max_wait: float) -> float:
    """Wait (up to ``max_wait`` s) until other processes use under QUIET_CORES; returns seconds waited."""
    started = time.perf_counter()
    load = OtherLoad()
    while time.perf_counter() - started < max_wait:
        load.start()
        time.sleep(0.5)
        cores = load.cores()
        if cores is None or cores < QUIET_CORES:
            break
    return time.perf_counter() - started
