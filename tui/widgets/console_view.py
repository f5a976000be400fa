"""A worker's console tail as a scrollable log that only ever appends what is new.

Each poll brings the file's last N lines; ``show_tail`` finds where they overlap what is shown
and writes only the lines after it, so a person scrolled back keeps their place (the view
follows the end only while it is at the end). A tail that no longer overlaps (the log was
rotated, or more than N lines came between two polls) is written after a marker line.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import Log

MAX_LINES = 10_000  # kept in the widget; older lines scroll away
GAP_MARKER = "··· (lines skipped: the log moved on faster than the view, or was rotated) ···"


def new_lines(shown: Sequence[str], tail: Sequence[str]) -> tuple[list[str], bool]:
    """The lines of ``tail`` after its overlap with the end of ``shown``, and whether there was a gap."""
    if not shown:
        return list(tail), False
    for overlap in range(min(len(shown), len(tail)), 0, -1):
        if shown[-overlap] == tail[0] and list(shown[-overlap:]) == list(tail[:overlap]):
            return list(tail[overlap:]), False
    return list(tail), bool(tail)


class ConsoleView(Log):
    """The tail of ``runs/<run>/worker.log``, appended to as it grows."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(max_lines=MAX_LINES, auto_scroll=True, id=id)
        self.shown: list[str] = []  # the lines of the last tail (what the next one overlaps)

    def show_tail(self, text: str) -> int:
        """Append the new lines of ``text`` (the log's last lines); returns how many were written."""
        tail = text.splitlines()
        fresh, gap = new_lines(self.shown, tail)
        self.shown = tail
        if not fresh:
            return 0
        at_end = self.scroll_y >= self.max_scroll_y  # follow only a view that is at the end
        self.write_lines([GAP_MARKER, *fresh] if gap else fresh, scroll_end=at_end)
        return len(fresh)

    def restart(self) -> None:
        """Forget what is shown (another run)."""
        self.shown = []
        self.clear()
