"""One metric of one or more runs as a plot: the widget owns its own ``plt`` and draws from ``MetricBuffer``s.

Each run is a trace in its own colour (the same colour on every chart: the screen assigns them).
Per trace, back to front: the min/max envelope of each bucket as faint lines (a spike stays visible
whatever the zoom), the raw line (faint when smoothing is on), the smoothed line. The y-axis fits
what is in view. The x-axis is the step, or the wall time since the run's first point.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.color import Color
from textual_plotext import PlotextPlot

from tui.metric_pages import is_eval
from tui.series import Bucket, MetricBuffer, ema

RGB = tuple[int, int, int]
TIME_UNITS = ((7200.0, 3600.0, "h"), (120.0, 60.0, "min"), (0.0, 1.0, "s"))  # (from span, divisor, label)


@dataclass(frozen=True)
class Trace:
    """One run's data on a chart: its buffer, its colour, and its start time (for the wall-time x-axis)."""

    run: str
    buffer: MetricBuffer
    color: RGB
    t0: float | None = None


@dataclass(frozen=True)
class ChartView:
    """How every chart draws: the step range, EMA weight (0: off) and x-axis kind, shared by the grid."""

    bounds: tuple[int, int] | None
    smoothing: float = 0.0
    by_time: bool = False


def time_unit(span_s: float) -> tuple[float, str]:
    """Divisor and label for an elapsed-time axis spanning ``span_s`` seconds."""
    for above, divisor, label in TIME_UNITS:
        if span_s >= above:
            return divisor, label
    return 1.0, "s"


class MetricChart(PlotextPlot):
    """A chart of one metric; ``redraw`` does nothing unless data, view or size moved."""

    can_focus = True  # Tab moves between charts; the focused one is what `x` exports

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="metric-chart")
        self.metric: str | None = None
        self.traces: list[Trace] = []
        self._drawn: tuple[object, ...] | None = None
        self.drawn: list[tuple[str, list[Bucket]]] = []  # (run, buckets) of the last drawing: export, tests
        self.drawn_points = 0  # buckets in the last drawing
        self.drawn_max: float | None = None  # the highest y drawn (an envelope's top included)
        self.drawn_lines: list[list[float]] = []  # the y values of each line drawn, back to front
        self.drawn_xs: list[list[float]] = []  # the x values of each run's trace drawn
        self.x_unit = "step"

    @property
    def buffer(self) -> MetricBuffer:
        """The main run's buffer (an empty one when the chart shows nothing)."""
        return self.traces[0].buffer if self.traces else MetricBuffer(self.metric or "")

    def show(self, metric: str | None, traces: list[Trace]) -> None:
        """Chart ``metric`` of these runs (the first is the main one); None leaves the slot empty."""
        if metric != self.metric or [(t.run, id(t.buffer), t.color, t.t0) for t in traces] != [
            (t.run, id(t.buffer), t.color, t.t0) for t in self.traces
        ]:
            self.metric, self.traces, self._drawn = metric, traces, None
            self.border_title = metric or ""
            self.set_class(metric is not None and is_eval(metric), "-eval")

    def redraw(self, view: ChartView) -> bool:
        """Rebuild the plot for ``view``; True if it did."""
        versions = tuple((t.run, t.buffer.version, t.t0) for t in self.traces)
        key = (self.metric, versions, view, self.size.width, self.size.height)
        if key == self._drawn:
            return False
        self._drawn = key
        plt = self.plt
        # clear_data on every draw: a plot first drawn empty otherwise keeps its [-1, 1] limits.
        plt.clear_data()
        plt.clear_figure()
        budget = max(16, self.size.width * 2)
        bounds = view.bounds
        self.drawn = [(t.run, t.buffer.visible(*bounds, budget=budget)) for t in self.traces] if bounds else []
        self.drawn_points = sum(len(buckets) for _, buckets in self.drawn)
        self.drawn_lines, self.drawn_xs, self.drawn_max = [], [], None
        if not self.drawn_points or bounds is None:
            self.border_subtitle = "no data yet" if self.metric else ""
            plt.xticks([])
            plt.yticks([])
            self.refresh()
            return True
        self._plot_traces(view)
        self.refresh()
        return True

    def _plot_traces(self, view: ChartView) -> None:
        plt = self.plt
        lows: list[float] = []
        highs: list[float] = []
        xs_all: list[float] = []
        divisor, unit = self._time_axis(view)
        self.x_unit = unit
        for trace, (_, buckets) in zip(self.traces, self.drawn, strict=True):
            if view.by_time:
                origin = trace.t0 or 0.0
                buckets = [b for b in buckets if b.last_ts is not None]
                xs = [((b.last_ts or 0.0) - origin) / divisor for b in buckets]
            else:
                xs = [float(b.last_step) for b in buckets]
            if not buckets:
                continue
            self._plot_one(xs, buckets, trace.color, view.smoothing)
            self.drawn_xs.append(xs)
            lows.extend(b.low for b in buckets)
            highs.extend(b.high for b in buckets)
            xs_all.extend(xs)
        if not highs:
            self.border_subtitle = "no wall time logged (ts)" if view.by_time else "no data yet"
            return
        low, high = min(lows), max(highs)
        self.drawn_max = high
        pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
        plt.ylim(low - pad, high + pad)  # the y-axis fits what is in view, not the whole run
        if view.by_time:
            plt.xlabel(f"elapsed {unit}")
            if max(xs_all) > min(xs_all):
                plt.xlim(min(xs_all), max(xs_all))
        elif view.bounds is not None and view.bounds[1] > view.bounds[0]:
            plt.xlim(*view.bounds)
        main = self.drawn[0][1] if self.drawn else []
        self.border_subtitle = f"{main[-1].last:.4g} @ {main[-1].last_step}" if main else ""

    def _plot_one(self, xs: list[float], buckets: list[Bucket], color: RGB, smoothing: float) -> None:
        plt = self.plt
        faint = self._faint(color)
        lasts = [b.last for b in buckets]
        if any(b.count > 1 for b in buckets):
            # The min/max envelope of each bucket, faint lines: a spike stands out as a peak, not a dot.
            plt.plot(xs, [b.high for b in buckets], marker="braille", color=faint)
            plt.plot(xs, [b.low for b in buckets], marker="braille", color=faint)
        if smoothing > 0:
            plt.plot(xs, lasts, marker="braille", color=faint)
            smoothed = ema(lasts, smoothing)
            plt.plot(xs, smoothed, marker="braille", color=color)
            self.drawn_lines += [lasts, smoothed]
        else:
            plt.plot(xs, lasts, marker="braille", color=color)
            self.drawn_lines.append(lasts)

    def _time_axis(self, view: ChartView) -> tuple[float, str]:
        if not view.by_time:
            return 1.0, "step"
        stamps = [
            (b.last_ts or 0.0) - (t.t0 or 0.0)
            for t, (_, buckets) in zip(self.traces, self.drawn, strict=True)
            for b in buckets[-1:]
            if b.last_ts is not None
        ]
        return time_unit(max(stamps, default=0.0))

    def _faint(self, color: RGB) -> RGB:
        """``color`` blended 60% into the plot's background: what stays behind the smoothed line."""
        try:
            canvas = Color.parse(self.app.theme_variables.get("surface", "#1e1e1e"))
        except Exception:  # noqa: BLE001 - no app yet (a unit test): a dark canvas
            canvas = Color(30, 30, 30)
        faint = Color(*color).blend(canvas, 0.6)
        return (faint.r, faint.g, faint.b)
