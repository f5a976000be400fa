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

from pathlib import Path

from engine.store.locks import ExclusiveLock, LockHeld


class EngineAlreadyRunning(LockHeld):
    """Another engine owns this campaign."""


class EngineLock(ExclusiveLock):
    """The campaign's engine lock; ``acquire`` raises ``EngineAlreadyRunning`` when it is held."""

    error = EngineAlreadyRunning

    def __init__(self, path: Path) -> None:
        super().__init__(path, what="another engine owns this campaign")
