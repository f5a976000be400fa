"""The status line: is the engine there, and if not, when the next try is."""

from __future__ import annotations

import time

from textual.widgets import Static


class StatusLine(Static):
    """ "engine connected" or "engine unreachable, retrying in Ns"; counts down by itself."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("connecting to the engine…", id=id)
        self.connected: bool | None = None
        self.detail = ""
        self.retry_at = 0.0
        self.where = ""

    def on_mount(self) -> None:
        self.set_interval(1.0, self._render_state)

    def show(self, connected: bool, detail: str = "", retry_in: float = 0.0, where: str = "") -> None:
        """A new connection state (``retry_in``: seconds to the next attempt)."""
        self.connected, self.detail, self.where = connected, detail, where or self.where
        self.retry_at = time.monotonic() + retry_in
        self._render_state()

    def _render_state(self) -> None:
        if self.connected is None:
            return
        self.set_class(not self.connected, "-unreachable")
        if self.connected:
            self.update(f"● engine connected  {self.where}")
            return
        left = max(0, round(self.retry_at - time.monotonic()))
        detail = f"  ({self.detail})" if self.detail else ""
        self.update(f"○ engine unreachable, retrying in {left}s{detail}  runs go on without the TUI")
