"""The Monitor screen (key 2): one run live — a grid of its metrics, overlays of other runs, GPU, alerts.

The grid shows one page of metric charts (2 x 2 by default: loss, grad_norm, learning_rate and the
eval metric); ``n``/``N`` turn the pages of every logged metric, ``/`` filters them by glob or
substring, ``g``/``G`` change the layout (fewer charts where they would be too small to read).
History comes decimated from ``/runs/{run}/series`` (an older engine: ``/runs/{run}/metrics``,
decimated here), only for the charts of the page; live points come from the campaign stream into
bounded buffers. New points are drawn as soon as they arrive, at most ``REDRAW_HZ`` times a second,
only the charts whose data or view moved, and only while this screen is showing. Zoom and pan
apply to all charts at once (in steps, whatever the x-axis shows); each zoom asks the engine again
for the range in view, so a zoomed chart is never coarser than the screen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.events import Resize
from textual.widgets import Footer

from engine.api import GpuStatus, RunStatus
from tui.client import EngineCallError, EngineClient, EngineUnreachable
from tui.metric_pages import DEFAULT_LAYOUT, LAYOUTS, SMOOTHING, MetricPages, fit_layout
from tui.monitor_data import SeriesCache
from tui.screens.monitor_view import ChartControls
from tui.screens.run_picker import RunPicker
from tui.series import StepRate, ViewWindow
from tui.widgets.alert_log import AlertLog
from tui.widgets.chart_legend import ChartLegend
from tui.widgets.gpu_panel import GpuPanel
from tui.widgets.metric_chart import MetricChart, Trace
from tui.widgets.metric_filter import MetricFilter
from tui.widgets.metric_grid import MetricGrid
from tui.widgets.run_progress import RunProgress
from tui.widgets.status_line import StatusLine

REDRAW_HZ = 20  # at most this many redraws a second, however fast points arrive (~10 ms each: <= 20% of a core)
IDLE_REDRAW_S = 0.5  # without news, a redraw check this often (a resize, a run's state)
EVAL_FILTER = "eval*"
UNREACHABLE_RETRIES, RETRY_S = 60, 0.5  # a run opened while the engine starts: 30 s of asking
# Pairs of keys share one label in the footer ("+- zoom"); each keeps its description for ? and the palette.
ZOOM, PAN, PAGE = Binding.Group("zoom", compact=True), Binding.Group("pan", compact=True), Binding.Group("page")
LAYOUT, SMOOTH = Binding.Group("grid", compact=True), Binding.Group("smooth", compact=True)
EXPORT = Binding.Group("export", compact=True)
FIXED_ROWS = 13  # status, progress, legend, bottom panels, footer: what the grid does not get


class MonitorScreen(ChartControls):
    """Charts, progress, GPU and alerts of the run picked on the Runs screen."""

    AUTO_FOCUS = ".metric-chart"  # the focused chart is the one `x` exports
    BINDINGS = [
        Binding("plus,equals_sign", "zoom(1)", "Zoom in", key_display="+", group=ZOOM),
        Binding("minus", "zoom(-1)", "Zoom out", key_display="-", group=ZOOM),
        Binding("left_square_bracket", "pan(-1)", "Pan left", key_display="[", group=PAN),
        Binding("right_square_bracket", "pan(1)", "Pan right", key_display="]", group=PAN),
        Binding("0", "whole_run", "Whole run"),
        Binding("n", "page(1)", "Next page", group=PAGE),
        Binding("N", "page(-1)", "Previous page", key_display="N", group=PAGE),
        Binding("slash", "filter", "Filter metrics", key_display="/"),
        Binding("e", "eval_group", "Eval metrics"),
        Binding("g", "layout(1)", "More charts", group=LAYOUT),
        Binding("G", "layout(-1)", "Fewer charts", key_display="G", group=LAYOUT),
        Binding("o", "overlay", "Overlay runs"),
        Binding("s", "smoothing(1)", "Smoother", group=SMOOTH),
        Binding("S", "smoothing(-1)", "Less smooth", key_display="S", group=SMOOTH),
        Binding("w", "x_axis", "Step / wall time"),
        Binding("x", "export_csv", "Export chart CSV", group=EXPORT),
        Binding("X", "export_svg", "Export screen SVG", key_display="X", group=EXPORT),
        Binding("c", "console", "Console"),
        Binding("i", "overview", "Run overview"),
    ]

    def __init__(self, client: EngineClient) -> None:
        super().__init__(id="monitor")
        self.client = client
        self.run_name: str | None = None
        self.overlays: list[str] = []
        self.status: RunStatus | None = None
        self.window = ViewWindow()
        self.rate = StepRate()
        self.step = 0
        self.data = SeriesCache(client)
        self.pages = MetricPages()
        self.layout_index = DEFAULT_LAYOUT
        self.smoothing_index = 0
        self.by_time = False
        self.clock: Callable[[], float] = time.time  # export names carry the time (a test may fix it)
        self._ready = False
        self._redraw_pending = False

    def compose(self) -> ComposeResult:
        yield StatusLine()
        yield RunProgress(id="run-progress")
        yield ChartLegend(id="chart-legend")
        yield MetricFilter(id="metric-filter")
        yield MetricGrid(*LAYOUTS[self.layout_index], id="charts")
        with Horizontal(id="monitor-bottom"):
            yield GpuPanel(id="gpu-panel")
            yield AlertLog(id="alert-log")
        yield Footer()

    def on_unmount(self) -> None:
        self._ready = False  # workers still awaiting the engine find no widgets to fill: they stop there

    def on_mount(self) -> None:
        self._ready = True  # a run picked before the screen was first composed loads now
        self.set_interval(IDLE_REDRAW_S, self.redraw)
        self._relayout()
        if self.run_name is not None:
            self._start_run(self.run_name)

    def chart_for(self, metric: str) -> MetricChart:
        """The chart of ``metric`` on this page (KeyError when it is not on it)."""
        for chart in self.charts:
            if chart.metric == metric:
                return chart
        raise KeyError(metric)

    @property
    def shown_runs(self) -> list[str]:
        """The main run, then the overlaid ones."""
        return [self.run_name, *self.overlays] if self.run_name is not None else []

    # -- which run -------------------------------------------------------------------------
    def show_run(self, run: str) -> None:
        """Switch to ``run``: empty buffers, then load its history, alerts and GPU state."""
        if run == self.run_name:
            return
        self.run_name, self.status, self.step = run, None, 0
        self.overlays = [r for r in self.overlays if r != run]
        self.window, self.rate = ViewWindow(), StepRate()
        self.data.forget(set(self.shown_runs))
        if self._ready:
            self._start_run(run)

    def _start_run(self, run: str) -> None:
        self.pages.set_names(self.pages.names)
        self._apply_page()
        self.query_one(RunProgress).show(run, "loading", 0, None, None)
        self.load_run(run)

    @work(exclusive=True, group="monitor-load")
    async def load_run(self, run: str) -> None:
        """Everything the screen shows about ``run`` that the stream does not bring."""
        for _ in range(UNREACHABLE_RETRIES):
            try:
                await self._load_run(run)
                break
            except EngineUnreachable:
                await asyncio.sleep(RETRY_S)  # the app may be starting the engine: ask again soon
            except EngineCallError as exc:
                self.notify(str(exc), title=f"monitor {run}", severity="error", timeout=8)
                break
            except NoMatches:
                return  # the app is closing: the widgets are gone
        await self._load_gpu()

    async def _load_run(self, run: str) -> None:
        self.status = next((s for s in await self.client.runs() if s.run == run), None)
        self.step = max(self.step, self.status.step if self.status else 0)
        self._show_progress()
        await self._load_names()
        await self._load_page_data()
        self.query_one(AlertLog).show_report((await self.client.alerts(run)).alerts)

    async def _load_names(self) -> None:
        names: set[str] = set()
        for run in self.shown_runs:
            names |= await self.data.load_names(run)
        if self.data.records and not self.data.fallback_noted:
            self.data.fallback_noted = True
            self.notify("this engine serves no decimated series: reading the whole metrics file", timeout=4)
        self.pages.set_names(names)
        self._apply_page()

    async def _load_gpu(self) -> None:
        status: GpuStatus | str
        try:
            status = await self.client.gpu()
        except EngineCallError as exc:
            status = str(exc)
        with suppress(NoMatches):  # the app closed while the engine answered
            panel = self.query_one(GpuPanel)
            if isinstance(status, str):
                panel.show_error(status)
            else:
                panel.show_status(status)

    def _show_progress(self) -> None:
        if self.run_name is None:
            return
        state = self.status.state if self.status else "unknown"
        max_steps = self.status.max_steps if self.status else None
        self.query_one(RunProgress).show(self.run_name, state, self.step, max_steps, self.rate.per_second)

    # -- the page of charts ------------------------------------------------------------------
    def _apply_page(self) -> None:
        """Put the page's metrics (and each shown run's buffer of them) on the chart slots."""
        if not self._ready:
            return
        metrics = self.pages.current()
        for i, chart in enumerate(self.grid.slots):
            metric = metrics[i] if i < len(metrics) else None
            chart.show(metric, self._traces(metric) if metric else [])
        self._show_legend()

    def _traces(self, metric: str) -> list[Trace]:
        traces = []
        for run in self.shown_runs:
            if run == self.run_name or metric in self.data.names.get(run, set()):
                buffer = self.data.buffer(run, metric)
                traces.append(Trace(run, buffer, self.data.color(run), self.data.t0(run)))
        return traces

    def _show_legend(self) -> None:
        pages = self.pages
        facts = [f"page {pages.page + 1}/{pages.count}", f"{len(pages.shown)} metrics"]
        if pages.pattern:
            facts.append(f"filter {pages.pattern}")
        weight = SMOOTHING[self.smoothing_index]
        facts += [f"EMA {weight:g}" if weight else "EMA off", "x wall time" if self.by_time else "x step"]
        facts.append(f"{self.grid.rows}x{self.grid.cols}")
        runs = [(run, self.data.color(run)) for run in self.shown_runs]
        self.query_one(ChartLegend).show(runs, facts)

    def _wanted(self) -> list[tuple[str, Any, int]]:
        """(run, buffer, budget) of every trace on the page, whose run logged the metric."""
        wanted = []
        for chart in self.charts:
            budget = max(32, chart.size.width * 2)
            for trace in chart.traces:
                if trace.buffer.metric in self.data.names.get(trace.run, set()):
                    wanted.append((trace.run, trace.buffer, budget))
        return wanted

    async def _load_page_data(self) -> None:
        """History of the page's charts not loaded yet, then the zoomed range's detail."""
        budget = max(64, self.size.width * 2)
        await self.data.load_histories([(run, buffer) for run, buffer, _ in self._wanted()], budget)
        self._apply_page()  # the runs' start times (wall-time axis) are known now
        bounds = self.view_bounds()
        if bounds is not None and self.window.span is not None:
            await self.data.load_details(self._wanted(), bounds)
        self.redraw()

    @work(exclusive=True, group="monitor-page")
    async def load_page(self) -> None:
        """The data a new page, layout or overlay needs."""
        try:
            await self._load_page_data()
        except EngineCallError as exc:
            self.notify(str(exc), title="monitor", severity="warning")

    def _page_changed(self) -> None:
        self._apply_page()
        if self.run_name is not None:
            self.load_page()
        self.redraw()

    def action_page(self, direction: int) -> None:
        """The next (1) or previous (-1) page of metrics."""
        self.pages.turn(direction)
        self._page_changed()

    def action_layout(self, direction: int) -> None:
        """More (1) or fewer (-1) charts per page."""
        self.layout_index = max(0, min(len(LAYOUTS) - 1, self.layout_index + direction))
        self._relayout()

    def on_resize(self, event: Resize) -> None:
        self._relayout()

    def _relayout(self) -> None:
        """The layout asked for, cut down to what the terminal can show legibly."""
        if not self._ready:
            return
        rows, cols = fit_layout(*LAYOUTS[self.layout_index], self.size.width, self.size.height - FIXED_ROWS)
        self.grid.configure(rows, cols)
        self.pages.resize(rows * cols)
        self._page_changed()

    # -- the filter ---------------------------------------------------------------------------
    def action_filter(self) -> None:
        """Open the filter box (a glob like eval/* or a substring like reward)."""
        self.query_one(ChartLegend).display = False  # the box takes the legend's line: the grid keeps its size
        self.query_one(MetricFilter).open(True, self.pages.pattern)

    def action_eval_group(self) -> None:
        """Only the eval metrics, or (again) every metric."""
        self._set_filter("" if self.pages.pattern == EVAL_FILTER else EVAL_FILTER)

    def _set_filter(self, pattern: str) -> None:
        self.pages.set_filter(pattern)
        self._page_changed()

    @on(MetricFilter.Applied)
    def _filter_applied(self, message: MetricFilter.Applied) -> None:
        if message.pattern != self.pages.pattern:
            self._set_filter(message.pattern)
        if message.done:
            self.query_one(MetricFilter).open(False)
            self.query_one(ChartLegend).display = True
            if self.charts:
                self.charts[0].focus()

    # -- overlays -------------------------------------------------------------------------------
    def action_overlay(self) -> None:
        """Pick other runs to draw on the same charts."""
        if self.run_name is not None:
            self.pick_overlays(self.run_name)

    @work(exclusive=True, group="monitor-overlay")
    async def pick_overlays(self, main: str) -> None:
        """Ask the engine for the campaign's runs, then for the ones to overlay."""
        try:
            runs = [s.run for s in await self.client.runs() if s.run != main]
        except EngineCallError as exc:
            self.notify(str(exc), title="overlay", severity="error")
            return
        if not runs:
            self.notify("no other run in this campaign to overlay", severity="warning")
            return
        chosen = await self.app.push_screen_wait(RunPicker(main, runs, self.overlays))
        if chosen is not None and main == self.run_name:
            self.set_overlays(chosen)

    def set_overlays(self, runs: list[str]) -> None:
        """Draw these runs over the main one (their names and histories are fetched)."""
        self.overlays = [r for r in runs if r != self.run_name]
        self.data.forget(set(self.shown_runs))
        self._apply_page()
        self.load_overlays()

    @work(exclusive=True, group="monitor-load")
    async def load_overlays(self) -> None:
        """The overlaid runs' metric names, then the page's data."""
        try:
            await self._load_names()
            await self._load_page_data()
        except EngineCallError as exc:
            self.notify(str(exc), title="overlay", severity="error", timeout=8)

    # -- live news (the app forwards the stream's messages) ----------------------------------
    def feed_metrics(self, run: str, records: list[dict[str, Any]]) -> None:
        """New metric lines of a shown run: into its buffers, drawn as soon as the redraw cap allows."""
        if run not in self.shown_runs:
            return
        names = self.data.feed(run, records)
        if run == self.run_name:
            for record in records:
                step, ts = record.get("step"), record.get("ts")
                if isinstance(step, int):
                    if isinstance(ts, int | float):
                        self.rate.add(step, float(ts))
                    self.step = max(self.step, step)
            self._show_progress()
        before = self.pages.current()
        if self.pages.add_names(names) and self.pages.current() != before:
            self._page_changed()  # a metric logged for the first time lands on this page
        self._redraw_soon()

    def _redraw_soon(self) -> None:
        """Draw new points as soon as the cap allows: a point is on screen one paint after it arrives,
        not up to a whole tick later; a burst of batches still costs at most REDRAW_HZ paints a second."""
        if self._redraw_pending or not self.is_current:
            return
        self._redraw_pending = True
        wait = max(0.005, self.last_redraw + 1 / REDRAW_HZ - time.monotonic())  # a 0 s timer divides by 0
        self.set_timer(wait, self._redraw_due)

    def _redraw_due(self) -> None:
        self._redraw_pending = False
        self.redraw()

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

    def action_console(self) -> None:
        """The worker's console output of this run, followed live (Escape closes)."""
        from tui.screens.console import ConsoleScreen

        if self.run_name is None:
            self.notify("no run on the Monitor: pick one on Runs (1)", severity="warning")
        else:
            self.app.push_screen(ConsoleScreen(self.client, self.run_name))

    def action_overview(self) -> None:
        """This run's config, its differences from production's, and its figures (Escape closes)."""
        from tui.screens.overview import OverviewScreen

        if self.run_name is None:
            self.notify("no run on the Monitor: pick one on Runs (1)", severity="warning")
        else:
            self.app.push_screen(OverviewScreen(self.client, self.run_name))
