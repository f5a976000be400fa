"""What the client's stream consumer and pollers post to the app: plain dataclass messages.

Posted from async workers on the app's own event loop, so handlers may touch widgets directly.
``SystemSample`` can replace an older one still queued (Toolong's trick): a backlog of GPU
samples collapses to the newest, which is the only one a panel shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message


@dataclass
class MetricPoints(Message):
    """New metric lines of one run, in file order (one message per batch read off the stream)."""

    run: str
    records: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunEvent(Message):
    """A lifecycle line of a run's events.jsonl (started, checkpoint, stopped, finished, ...)."""

    run: str
    record: dict[str, Any]


@dataclass
class AlertRaised(Message):
    """An ``alert`` event: a watch rule fired on a run."""

    run: str
    record: dict[str, Any]


@dataclass
class SystemSample(Message):
    """The newest system.jsonl record of a run (GPU readings); replaces an older queued one."""

    run: str
    record: dict[str, Any]

    def can_replace(self, message: Message) -> bool:
        """A queued sample of the same run is stale once this one exists."""
        return isinstance(message, SystemSample) and message.run == self.run


@dataclass
class EngineConnection(Message):
    """The engine became reachable, or stopped answering (``retry_in`` seconds until the next try)."""

    connected: bool
    detail: str = ""
    retry_in: float = 0.0

    def can_replace(self, message: Message) -> bool:
        """Only the latest connection state matters."""
        return isinstance(message, EngineConnection)


@dataclass
class OpenRun(Message):
    """A screen asks for the Monitor on ``run`` (the app switches screens)."""

    run: str
