"""The `/` box of the Monitor: a glob (``eval/*``) or a substring (``reward``) over metric names."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input

PAUSE_S = 0.2  # typing is applied once it pauses: each change re-lays the grid, a fast typist needs the last


class MetricFilter(Input):
    """Filters the metrics grid as one types; Enter keeps the filter, Escape clears it (both close the box)."""

    BINDINGS = [Binding("escape", "clear_filter", "Clear filter")]

    class Applied(Message):
        """The filter to show now; ``done``: the box closes."""

        def __init__(self, pattern: str, done: bool) -> None:
            super().__init__()
            self.pattern, self.done = pattern, done

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="metrics: glob (eval/*, rewards/*) or substring (reward, completions/)", id=id)
        self._pause: Timer | None = None
        self.open(False)

    def open(self, show: bool, pattern: str = "") -> None:
        """Show (and enable) the box with ``pattern`` in it, or hide it (disabled: it never takes the focus)."""
        self.display = show
        self.disabled = not show
        if show:
            self.value = pattern
            self.focus()

    def _stop_pause(self) -> None:
        if self._pause is not None:
            self._pause.stop()
            self._pause = None

    def on_input_changed(self, event: Input.Changed) -> None:
        """Apply what is typed once typing pauses."""
        event.stop()
        self._stop_pause()
        if self.display:
            pattern = event.value
            self._pause = self.set_timer(PAUSE_S, lambda: self.post_message(self.Applied(pattern, False)))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter: keep the filter."""
        event.stop()
        self._stop_pause()
        self.post_message(self.Applied(event.value, True))

    def action_clear_filter(self) -> None:
        """Escape: no filter any more."""
        self._stop_pause()
        self.post_message(self.Applied("", True))
