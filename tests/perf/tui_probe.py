"""What the TUI benchmarks read off the Monitor: its charts by type, what each drew, and timed draws.

Shared by tests/perf/bench_tui_*.py. Only the Monitor's public surface is used — the
``MetricChart`` widgets found by type, their metric, ``drawn_points`` and (when the chart keeps
it) ``drawn``/``drawn_max``, and ``MonitorScreen.redraw`` / ``feed_metrics`` — so the scripts
survive a rework of the screen's layout. ``DrawTimer`` wraps ``MetricChart.render`` (Textual calls
it to paint a chart; since the braille charts it hands over strips built in ``redraw``, laying them
out again only after a resize) and ``MonitorScreen.redraw`` (which
hands each chart its new data) with timers, and notes when ``feed_metrics`` got each step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tui.screens.monitor import MonitorScreen
from tui.widgets.metric_chart import MetricChart


def chart_metric(chart: MetricChart) -> str | None:
    """The metric a chart shows (None: an empty slot)."""
    metric = getattr(chart, "metric", None)
    return metric if metric is not None or not hasattr(chart, "buffer") else chart.buffer.metric


def charts_of(app: Any) -> list[MetricChart]:
    """The charts on the current screen that show a metric."""
    return [chart for chart in app.screen.query(MetricChart) if chart_metric(chart) is not None]


def drawn_last_step(chart: MetricChart) -> int | None:
    """The newest step in what the chart drew last (None: nothing drawn)."""
    drawn = getattr(chart, "drawn", None)
    if drawn is not None:
        return max((b.last_step for _, buckets in drawn for b in buckets), default=None)
    return chart.buffer.last_step if chart.drawn_points else None


def drawn_high(chart: MetricChart) -> float | None:
    """The highest value the chart drew (a bucket's max included: a spike shows here)."""
    high = getattr(chart, "drawn_max", None)
    if high is not None:
        return float(high)
    first, last = chart.buffer.first_step, chart.buffer.last_step
    if first is None or last is None:
        return None
    buckets = chart.buffer.visible(first, last, max(16, chart.size.width * 2))
    return max((b.high for b in buckets), default=None)


def all_drawn(app: Any, metrics: Iterable[str]) -> bool:
    """Every one of ``metrics`` has a chart on screen that drew some data."""
    drawn = {chart_metric(c) for c in charts_of(app) if c.drawn_points}
    return set(metrics) <= drawn


@dataclass
class DrawTimer:
    """Timers around ``MonitorScreen.redraw`` and ``MetricChart.render``, installed until ``uninstall()``."""

    redraw_ms: list[float] = field(default_factory=list)
    render_ms: list[float] = field(default_factory=list)
    on_render: Callable[[MetricChart, float], None] | None = None  # called after each paint of a chart
    fed: dict[int, float] = field(default_factory=dict)  # step -> when the Monitor's feed_metrics got it
    _saved: dict[str, Any] = field(default_factory=dict)

    def install(self) -> DrawTimer:
        self._saved = {"redraw": MonitorScreen.redraw, "render": MetricChart.render, "feed": MonitorScreen.feed_metrics}
        redraw, render, feed, timer = self._saved["redraw"], self._saved["render"], self._saved["feed"], self

        def timed_redraw(screen: MonitorScreen, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return redraw(screen, *args, **kwargs)
            finally:
                timer.redraw_ms.append(1000 * (time.perf_counter() - started))

        def timed_render(chart: MetricChart) -> Any:
            started = time.perf_counter()
            result = render(chart)
            done = time.perf_counter()
            timer.render_ms.append(1000 * (done - started))
            if timer.on_render is not None:
                timer.on_render(chart, done)
            return result

        def noted_feed(screen: MonitorScreen, run: str, records: list[dict[str, Any]]) -> Any:
            now = time.perf_counter()
            for record in records:
                timer.fed.setdefault(record.get("step", -1), now)
            return feed(screen, run, records)

        MonitorScreen.redraw = timed_redraw  # type: ignore[method-assign]
        MonitorScreen.feed_metrics = noted_feed  # type: ignore[method-assign]
        MetricChart.render = timed_render  # type: ignore[method-assign]
        return self

    def uninstall(self) -> None:
        MonitorScreen.redraw = self._saved["redraw"]  # type: ignore[method-assign]
        MonitorScreen.feed_metrics = self._saved["feed"]  # type: ignore[method-assign]
        MetricChart.render = self._saved["render"]  # type: ignore[method-assign]

    def reset(self) -> None:
        self.redraw_ms.clear()
        self.render_ms.clear()
