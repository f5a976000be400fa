"""One line above the charts: the runs drawn (each in its colour) and how the grid is set."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class ChartLegend(Static):
    """``━━ bd6.8d2  ━━ bd6.8d   page 1/3 · 12 metrics · filter eval/* · EMA 0.8 · x step``."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.runs: list[str] = []  # the names shown, in order (tests read them)

    def show(self, runs: list[tuple[str, tuple[int, int, int]]], facts: list[str]) -> None:
        """The runs with their colours, then the grid's facts."""
        self.runs = [name for name, _ in runs]
        text = Text(no_wrap=False, overflow="ellipsis")
        for name, (r, g, b) in runs:
            text.append("━━ ", style=f"bold rgb({r},{g},{b})")
            text.append(f"{name}  ")
        text.append("  " + " · ".join(facts), style="dim")
        self.update(text)
