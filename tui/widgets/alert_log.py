"""The alert log: every watch rule that fired on the run, newest last."""

from __future__ import annotations

import time
from typing import Any

from textual.widgets import RichLog

from engine.api import Alert


class AlertLog(RichLog):
    """One line per alert: when, which rule, on what value, and what it did.

    A RichLog, not a Log: Log measures new lines in a thread worker, which fails with
    NoActiveAppError (a traceback at the person) when the app quits while it runs.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=500, auto_scroll=True, markup=False)
        self.count = 0

    def show_report(self, alerts: list[Alert]) -> None:
        """The run's alerts so far (``/runs/{run}/alerts``), replacing what was shown."""
        self.clear()
        self.count = 0
        if not alerts:
            self.write("no alerts")
        for alert in alerts:
            self.add(alert.model_dump())

    def add(self, record: dict[str, Any]) -> None:
        """One alert event (from the stream) or report entry."""
        if self.count == 0:
            self.clear()
        self.count += 1
        ts = record.get("ts")
        when = time.strftime("%H:%M:%S ", time.localtime(ts)) if isinstance(ts, int | float) else ""
        step = record.get("first_step", record.get("step", "?"))
        self.write(
            f"{when}{str(record.get('action', 'warn')).upper():<4} {record.get('rule', '?')}: "
            f"{record.get('metric', '?')} = {record.get('value', '?')} at step {step}"
        )
