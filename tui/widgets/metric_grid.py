"""The Monitor's chart area: rows x columns of MetricCharts, one page of metrics at a time."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid

from tui.widgets.metric_chart import MetricChart


class MetricGrid(Grid):
    """A grid of chart slots; only the slots of the page exist, so charts off screen cost nothing."""

    def __init__(self, rows: int, cols: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows, self.cols = rows, cols
        self.slots: list[MetricChart] = [MetricChart() for _ in range(rows * cols)]

    def compose(self) -> ComposeResult:
        """The first layout's slots."""
        self._apply_size()
        yield from self.slots

    def configure(self, rows: int, cols: int) -> bool:
        """Change the layout, adding or removing slots; True when it changed."""
        if (rows, cols) == (self.rows, self.cols):
            return False
        self.rows, self.cols = rows, cols
        want = rows * cols
        if want > len(self.slots):
            extra = [MetricChart() for _ in range(want - len(self.slots))]
            self.slots.extend(extra)
            if self.is_mounted:
                self.mount(*extra)
        else:
            gone, self.slots = self.slots[want:], self.slots[:want]
            for chart in gone:
                chart.remove()
        self._apply_size()
        return True

    def _apply_size(self) -> None:
        self.styles.grid_size_rows = self.rows
        self.styles.grid_size_columns = self.cols
