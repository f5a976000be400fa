"""The Monitor screen (key 2): one run live — loss, grad norm, learning rate, an eval metric, GPU, alerts.

History comes decimated from ``/runs/{run}/series`` (an older engine: ``/runs/{run}/metrics``,
decimated here); live points come from the campaign stream into each chart's bounded buffer. A
timer redraws at most ``REDRAW_HZ`` times a second, and only the charts whose data or view moved,
and only while this screen is showing. Zoom and pan apply to all charts at once (x is the step);
each zoom asks the engine again for the range in view, so a zoomed chart is never coarser than
the screen.
"""

from __future__ import annotations

import math
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.screen import Screen
from textual.widgets import Footer

from engine.api import RunStatus
from tui.client import EndpointMissing, EngineCallError, EngineClient
from tui.series import Bucket, StepRate, ViewWindow, buckets_from_series, decimate, points_from_records
from tui.widgets.alert_log import AlertLog
from tui.widgets.gpu_panel import GpuPanel
from tui.widgets.metric_chart import MetricChart
from tui.widgets.run_progress import RunProgress
from tui.widgets.status_line import StatusLine

REDRAW_HZ = 6
TRAIN_METRICS = ("loss", "grad_norm", "learning_rate")
EVAL_PREFERRED = ("eval_loss", "eval/loss")


def pick_eval_metric(names: list[str]) -> str | None:
    """The eval metric to chart: eval_loss when logged, else the first eval one in name order."""
    for name in EVAL_PREFERRED:
        if name in names:
            return name
    evals = sorted(n for n in names if n.startswith(("eval_", "eval/")) and not n.endswith(("runtime", "per_second")))
    return evals[0] if evals else None


class MonitorScreen(Screen[None]):
    """Charts, progress, GPU and alerts of the run picked on the Runs screen."""

    BINDINGS = [
        Binding("plus,equals_sign", "zoom(1)", "Zoom in", key_display="+"),
        Binding("minus", "zoom(-1)", "Zoom out", key_display="-"),
        Binding("left_square_bracket", "pan(-1)", "Pan left", key_display="["),
        Binding("right_square_bracket", "pan(1)", "Pan right", key_display="]"),
        Binding("0", "whole_run", "Whole run"),
    ]

    def __init__(self, client: EngineClient) -> None:
        super().__init__(id="monitor")
        self.client = client
        self.run_name: str | None = None
        self.status: RunStatus | None = None
        self.window = ViewWindow()
        self.rate = StepRate()
        self.step = 0
        self._records: list[dict[str, Any]] | None = None  # the fallback: the whole metrics.jsonl
        self._ready = False

    def compose(self) -> ComposeResult:
        yield StatusLine()
        yield RunProgress(id="run-progress")
        with Grid(id="charts"):
            for metric in TRAIN_METRICS:
                yield MetricChart(metric, title=metric.replace("_", " "), id=f"chart-{metric}")
            yield MetricChart("eval", title="eval: none logged yet", id="chart-eval")
        with Horizontal(id="monitor-bottom"):
            yield GpuPanel(id="gpu-panel")
            yield AlertLog(id="alert-log")
        yield Footer()

    def on_mount(self) -> None:
        self._ready = True  # a run picked before the screen was first composed loads now
        self.set_interval(1 / REDRAW_HZ, self.redraw)
        if self.run_name is not None:
            self._start_run(self.run_name)

    @property
    def charts(self) -> list[MetricChart]:
        """The four charts, in screen order."""
        return list(self.query(MetricChart))

    # -- which run -------------------------------------------------------------------------
    def show_run(self, run: str) -> None:
        """Switch to ``run``: empty buffers, then load its history, alerts and GPU state."""
        if run == self.run_name:
            return
        self.run_name, self.status, self.step = run, None, 0
        self.window, self.rate, self._records = ViewWindow(), StepRate(), None
        if self._ready:
            self._start_run(run)

    def _start_run(self, run: str) -> None:
        for chart in self.charts:
            chart.reset(chart.buffer.metric if chart.id != "chart-eval" else "eval")
        self.query_one(RunProgress).show(run, "loading", 0, None, None)
        self.load_run(run)

    @work(exclusive=True, group="monitor-load")
    async def load_run(self, run: str) -> None:
        """Everything the screen shows about ``run`` that the stream does not bring."""
        try:
            self.status = next((s for s in await self.client.runs() if s.run == run), None)
            self.step = self.status.step if self.status else 0
            self._show_progress()
            await self._load_history(run)
            self.query_one(AlertLog).show_report((await self.client.alerts(run)).alerts)
        except EngineCallError as exc:
            self.notify(str(exc), title=f"monitor {run}", severity="error", timeout=8)
        await self._load_gpu()

    async def _load_history(self, run: str) -> None:
        names = await self._metric_names(run)
        eval_chart = self.query_one("#chart-eval", MetricChart)
        eval_metric = pick_eval_metric(names)
        if eval_metric is not None:
            eval_chart.reset(eval_metric)
        budget = max(64, self.size.width * 2)
        for chart in self.charts:
            if chart.buffer.metric in names:
                chart.buffer.set_history(await self._buckets(run, chart.buffer.metric, None, None, budget))

    async def _metric_names(self, run: str) -> list[str]:
        """The metrics the run logged (from the engine, or from its whole metrics file)."""
        try:
            return list((await self.client.metric_names(run)).latest)
        except EndpointMissing:
            self._records = await self.client.metrics(run)
            self.notify("this engine serves no decimated series: reading the whole metrics file", timeout=4)
            return sorted({key for record in self._records for key in record})

    async def _buckets(self, run: str, metric: str, start: int | None, end: int | None, budget: int) -> list[Bucket]:
        """A metric's history over [start, end] in at most ``budget`` buckets."""
        if self._records is None:
            try:
                series = await self.client.series(run, metric, start=start, end=end, buckets=budget)
                return buckets_from_series(series)
            except EndpointMissing:
                self._records = await self.client.metrics(run)
        points = points_from_records(self._records, metric)
        lo, hi = start if start is not None else -math.inf, end if end is not None else math.inf
        return decimate(((s, v) for s, v in points if lo <= s <= hi), budget)

    async def _load_gpu(self) -> None:
        panel = self.query_one(GpuPanel)
        try:
            panel.show_status(await self.client.gpu())
        except EngineCallError as exc:
            panel.show_error(str(exc))

    def _show_progress(self) -> None:
        if self.run_name is None:
            return
        state = self.status.state if self.status else "unknown"
        max_steps = self.status.max_steps if self.status else None
        self.query_one(RunProgress).show(self.run_name, state, self.step, max_steps, self.rate.per_second)

    # -- live news (the app forwards the stream's messages) ----------------------------------
    def feed_metrics(self, run: str, records: list[dict[str, Any]]) -> None:
        """New metric lines: into the buffers (drawn by the next redraw tick)."""
        if run != self.run_name:
            return
        charts = self.charts
        for record in records:
            step = record.get("step")
            if not isinstance(step, int):
                continue
            ts = record.get("ts")
            if isinstance(ts, int | float):
                self.rate.add(step, float(ts))
            self.step = max(self.step, step)
            for chart in charts:
                value = record.get(chart.buffer.metric)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    chart.buffer.append(step, float(value))
        if self._records is not None:
            self._records.extend(records)
        self._show_progress()

    def feed_event(self, run: str, record: dict[str, Any]) -> None:
        """A lifecycle event: the run's state changed, so ask for it again."""
        if run == self.run_name:
            self.refresh_status(run)

    def feed_alert(self, run: str, record: dict[str, Any]) -> None:
        """An alert of the shown run, into the log."""
        if run == self.run_name:
            self.query_one(AlertLog).add(record)

    def feed_system(self, run: str, record: dict[str, Any]) -> None:
        """A GPU sample (any run's: the GPUs are the machine's)."""
        self.query_one(GpuPanel).show_record(record)

    @work(exclusive=True, group="monitor-status")
    async def refresh_status(self, run: str) -> None:
        """The run's state after an event."""
        try:
            self.status = next((s for s in await self.client.runs() if s.run == run), self.status)
        except EngineCallError:
            return  # the status line already says the engine is gone
        self._show_progress()

    # -- drawing, zoom and pan --------------------------------------------------------------
    def data_range(self) -> tuple[int, int] | None:
        """First and newest step over every chart's data (None: nothing yet)."""
        firsts = [c.buffer.first_step for c in self.charts if c.buffer.first_step is not None]
        lasts = [c.buffer.last_step for c in self.charts if c.buffer.last_step is not None]
        return (min(firsts), max(lasts)) if firsts and lasts else None

    def view_bounds(self) -> tuple[int, int] | None:
        """The step range in view."""
        span = self.data_range()
        return self.window.bounds(*span) if span else None

    def redraw(self) -> None:
        """Redraw the charts whose data or view changed (only while this screen is showing)."""
        if not self.is_current:
            return
        bounds = self.view_bounds()
        with self.app.batch_update():
            for chart in self.charts:
                if chart.display:
                    chart.redraw(bounds)

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
            self.load_detail(self.run_name, bounds)
        self.redraw()

    @work(exclusive=True, group="monitor-detail")
    async def load_detail(self, run: str, bounds: tuple[int, int]) -> None:
        """Finer buckets for the zoomed range, from the engine (every point on disk considered)."""
        try:
            for chart in self.charts:
                if chart.buffer.first_step is not None:
                    budget = max(32, chart.size.width * 2)
                    chart.buffer.set_detail(*bounds, await self._buckets(run, chart.buffer.metric, *bounds, budget))
        except EngineCallError as exc:
            self.notify(str(exc), title="zoom", severity="warning")
