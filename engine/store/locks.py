"""Exclusive, non-blocking ``flock`` locks on files, released by the kernel when their process ends.

Used where one writer at a time is the rule: the campaign's one engine, one merge per run,
one bench writer per run. A lock file records its holder's pid for the message a second
comer gets. Python opens files close-on-exec, so a child process never inherits a lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from engine.errors import TunedeckError


class LockHeld(TunedeckError):
    """Someone else holds the lock."""


class ExclusiveLock:
    """``acquire`` takes the lock or raises ``LockHeld`` (after waiting up to ``wait_s``)."""

    error: type[LockHeld] = LockHeld

    def __init__(self, path: Path, *, what: str) -> None:
        self.path = path
        self.what = what  # "another engine owns this campaign", for the message
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, *, wait_s: float = 0.0) -> None:
        """Take the lock (a no-op when this object holds it already) and record our pid in it."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise self.error(f"{self.what} (pid {holder})", path=self.path) from None
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

    def __enter__(self) -> ExclusiveLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def run_writer_lock(run_root: Path) -> ExclusiveLock:
    """Held by the process appending to a run's metrics.jsonl (its training worker, rank 0)."""
    return ExclusiveLock(run_root / ".writer.lock", what=f"run {run_root.name!r} is being written by another process")
