"""One engine per campaign: an exclusive lock held for the engine's whole life.

``.tunedeck/engine.lock`` is locked with ``flock`` before the engine touches anything: before
a stale socket is removed, before any worker is adopted or launched. A second engine of the
same campaign (six ``tunedeck engine start`` at once, a TUI starting one beside a terminal)
fails to take it and exits, so it can never launch a queued run a second time. The kernel
drops the lock when the process ends, however it ends (kill -9 included), so a dead engine
never blocks the next. The descriptor is not inherited by workers (Python opens files
close-on-exec), so a worker that outlives its engine does not hold the campaign.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from engine.errors import TunedeckError


class EngineAlreadyRunning(TunedeckError):
    """Another engine owns this campaign."""


class EngineLock:
    """The campaign's engine lock; ``acquire`` raises ``EngineAlreadyRunning`` when it is held."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock (a no-op when this object holds it already) and record our pid in it."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise EngineAlreadyRunning(f"another engine owns this campaign (pid {holder})", path=self.path) from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
