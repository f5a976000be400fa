"""The Monitor's chart controls: drawing, zoom and pan, smoothing, the x-axis, and the exports.

A base of ``MonitorScreen`` (tui/screens/monitor.py), which owns the data and the page of charts;
these are the keys that change how the page is drawn, kept apart so each module stays small.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import work
from textual.screen import Screen

from tui.chart_export import ExportRefused, csv_text, export_name, write_new
from tui.client import EngineCallError, EngineClient
from tui.metric_pages import SMOOTHING
from tui.monitor_data import SeriesCache
from tui.series import ViewWindow
from tui.widgets.metric_chart import ChartView, MetricChart
from tui.widgets.metric_grid import MetricGrid


class ChartControls(Screen[None]):
    """Drawing and the keys that change it; the screen below provides the data."""

    client: EngineClient
    run_name: str | None
    window: ViewWindow
    data: SeriesCache
    smoothing_index: int
    by_time: bool
    clock: Callable[[], float]
    _ready: bool

    @property
    def grid(self) -> MetricGrid:
        """The chart area."""
        return self.query_one(MetricGrid)

    @property
    def charts(self) -> list[MetricChart]:
        """The charts of the page that show a metric, in screen order."""
        return [c for c in self.grid.slots if c.metric is not None] if self._ready else []

    def _wanted(self) -> list[tuple[str, Any, int]]:
        raise NotImplementedError

    def _show_legend(self) -> None:
        raise NotImplementedError

    # -- drawing, zoom and pan --------------------------------------------------------------
    def data_range(self) -> tuple[int, int] | None:
        """First and newest step over every trace on the page (None: nothing yet)."""
        buffers = [t.buffer for c in self.charts for t in c.traces]
        firsts = [b.first_step for b in buffers if b.first_step is not None]
        lasts = [b.last_step for b in buffers if b.last_step is not None]
        return (min(firsts), max(lasts)) if firsts and lasts else None

    def view_bounds(self) -> tuple[int, int] | None:
        """The step range in view."""
        span = self.data_range()
        return self.window.bounds(*span) if span else None

    last_redraw = 0.0  # time.monotonic() of the last redraw (the cap on redraws counts from it)

    def redraw(self) -> None:
        """Redraw the charts whose data or view changed (only while this screen is showing)."""
        if not self.is_current or not self._ready:
            return
        self.last_redraw = time.monotonic()
        view = ChartView(self.view_bounds(), SMOOTHING[self.smoothing_index], self.by_time)
        with self.app.batch_update():
            for chart in self.grid.slots:
                if chart.display and chart.is_mounted:
                    chart.redraw(view)

    def action_zoom(self, direction: int) -> None:
        """Zoom in (1) or out (-1), keeping the right edge — the newest step while live."""
        span = self.data_range()
        if span is None:
            return
        (self.window.zoom_in if direction > 0 else self.window.zoom_out)(*span)
        self._view_changed()

    def action_pan(self, direction: int) -> None:
        """Pan a quarter of the view left (-1) or right (1)."""
        span = self.data_range()
        if span is None:
            return
        self.window.pan(direction, *span)
        self._view_changed()

    def action_whole_run(self) -> None:
        """Back to the whole run, following new points."""
        self.window = ViewWindow()
        self._view_changed()

    def _view_changed(self) -> None:
        bounds = self.view_bounds()
        if bounds is not None and self.run_name is not None and self.window.span is not None:
            self.load_detail(bounds)
        self.redraw()

    @work(exclusive=True, group="monitor-detail")
    async def load_detail(self, bounds: tuple[int, int]) -> None:
        """Finer buckets for the zoomed range, from the engine (every point on disk considered)."""
        try:
            await self.data.load_details(self._wanted(), bounds)
        except EngineCallError as exc:
            self.notify(str(exc), title="zoom", severity="warning")

    def action_smoothing(self, direction: int) -> None:
        """Smoother (1) or less smooth (-1): EMA over the buckets in view, the raw line kept faint."""
        self.smoothing_index = max(0, min(len(SMOOTHING) - 1, self.smoothing_index + direction))
        self._show_legend()
        self.redraw()

    def action_x_axis(self) -> None:
        """The x-axis by step, or by wall time since each run's first point."""
        self.by_time = not self.by_time
        self._show_legend()
        self.redraw()

    # -- exports ------------------------------------------------------------------------------
    def exports_dir(self) -> Path:
        """The campaign's exports/ (a remote engine's campaign is not here: ./tunedeck-exports)."""
        target = self.client.target
        return target.campaign / "exports" if target.campaign and not target.url else Path.cwd() / "tunedeck-exports"

    def action_export_csv(self) -> None:
        """The focused chart's buckets in view (else the first chart's) as CSV."""
        focused = self.focused if isinstance(self.focused, MetricChart) and self.focused.drawn_points else None
        chart = focused or next((c for c in self.charts if c.drawn_points), None)
        if chart is None or chart.metric is None or self.run_name is None:
            self.notify("no chart with data to export", severity="warning")
            return
        name = export_name(self.run_name, chart.metric, self.clock(), "csv")
        self._write(self.exports_dir() / name, csv_text(chart.metric, chart.drawn), "chart")

    def action_export_svg(self) -> None:
        """The screen as an SVG file."""
        name = export_name(self.run_name or "tunedeck", "monitor", self.clock(), "svg")
        self._write(self.exports_dir() / name, self.app.export_screenshot(), "screenshot")

    def _write(self, path: Path, text: str, what: str) -> None:
        try:
            write_new(path, text)
        except ExportRefused as exc:
            self.notify(str(exc), title=f"export {what}", severity="error", timeout=8)
            return
        self.notify(f"{what} written to {path}", title="export")
