"""One metric of one or more runs as a braille chart, drawn from ``MetricBuffer``s (tui/widgets/braille_canvas.py).

Each run is a trace in its own colour (the same colour on every chart: the screen assigns them).
Per trace, back to front: the min/max envelope of each bucket as faint lines (a spike stays visible
whatever the zoom), the raw line (faint when smoothing is on), the smoothed line. The y-axis fits
what is in view. The x-axis is the step, or the wall time since the run's first point.
``redraw`` decides what to draw and lays the chart out once; painting (``render``) hands Textual the
strips already built, and lays them out again only when the chart's size changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.color import Color
from textual.css.styles import RulesMap
from textual.strip import Strip
from textual.style import Style
from textual.visual import RenderOptions, Visual
from textual.widget import Widget

from tui.metric_pages import is_eval
from tui.series import Bucket, MetricBuffer, ema
from tui.widgets.braille_canvas import ChartStyle, Limits, PlotLine, chart_strips

RGB = tuple[int, int, int]
TIME_UNITS = ((7200.0, 3600.0, "h"), (120.0, 60.0, "min"), (0.0, 1.0, "s"))  # (from span, divisor, label)
DARK = Color(30, 30, 30)  # the canvas when there is no app to ask for its theme (a unit test)


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


class ChartStrips(Visual):
    """A chart already laid out as strips: what ``MetricChart.render`` gives Textual to paint."""

    def __init__(self, strips: list[Strip]) -> None:
        self.strips = strips

    def render_strips(self, width: int, height: int | None, style: Style, options: RenderOptions) -> list[Strip]:
        """The strips as built (the chart built them at this size)."""
        return self.strips

    def get_optimal_width(self, rules: RulesMap, container_width: int) -> int:
        """As wide as it was built."""
        return max((strip.cell_length for strip in self.strips), default=0)

    def get_height(self, rules: RulesMap, width: int) -> int:
        """As high as it was built."""
        return len(self.strips)


class MetricChart(Widget):
    """A chart of one metric; ``redraw`` does nothing unless data, view or size moved."""

    DEFAULT_CSS = """
    MetricChart {
        width: 1fr;
        height: 1fr;
    }
    """

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
        self._lines: list[PlotLine] = []  # what the canvas draws, back to front
        self._limits: tuple[Limits, Limits] | None = None  # (x, y) limits; None: nothing to draw
        self._look = ChartStyle((DARK.r, DARK.g, DARK.b), (224, 224, 224))
        self._laid_out: tuple[object, ...] | None = None  # (width, height, look) of self._strips
        self._strips = ChartStrips([])

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
        """Work out what to draw for ``view`` and lay the chart out; True if anything moved."""
        look = self._theme_look()
        versions = tuple((t.run, t.buffer.version, t.t0) for t in self.traces)
        key = (self.metric, versions, view, self.size.width, self.size.height, look)
        if key == self._drawn:
            return False
        self._drawn, self._look = key, look
        budget = max(16, self.size.width * 2)
        bounds = view.bounds
        self.drawn = [(t.run, t.buffer.visible(*bounds, budget=budget)) for t in self.traces] if bounds else []
        self.drawn_points = sum(len(buckets) for _, buckets in self.drawn)
        self.drawn_lines, self.drawn_xs, self.drawn_max = [], [], None
        self._lines, self._limits = [], None
        if not self.drawn_points or bounds is None:
            self.border_subtitle = "no data yet" if self.metric else ""
        else:
            self._plot_traces(view)
        self._lay_out()
        self.refresh()
        return True

    def render(self) -> Visual:
        """The chart as laid out by ``redraw``; laid out again only if the size changed since."""
        if self._laid_out != (self.size.width, self.size.height, self._look):
            self._lay_out()
        return self._strips

    def _lay_out(self) -> None:
        width, height = self.size.width, self.size.height
        unit = "" if self.x_unit == "step" else self.x_unit
        self._strips = ChartStrips(chart_strips(width, height, self._lines, self._limits, self._look, unit))
        self._laid_out = (width, height, self._look)

    def _plot_traces(self, view: ChartView) -> None:
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
        x_limits = (min(xs_all), max(xs_all))
        if not view.by_time and view.bounds is not None and view.bounds[1] > view.bounds[0]:
            x_limits = (float(view.bounds[0]), float(view.bounds[1]))
        self._limits = (x_limits, (low - pad, high + pad))  # the y-axis fits what is in view, not the whole run
        main = self.drawn[0][1] if self.drawn else []
        self.border_subtitle = f"{main[-1].last:.4g} @ {main[-1].last_step}" if main else ""

    def _plot_one(self, xs: list[float], buckets: list[Bucket], color: RGB, smoothing: float) -> None:
        faint = self._faint(color)
        lasts = [b.last for b in buckets]
        if any(b.count > 1 for b in buckets):
            # The min/max envelope of each bucket, faint lines: a spike stands out as a peak, not a dot.
            self._lines.append(PlotLine(xs, [b.high for b in buckets], faint))
            self._lines.append(PlotLine(xs, [b.low for b in buckets], faint))
        if smoothing > 0:
            smoothed = ema(lasts, smoothing)
            self._lines += [PlotLine(xs, lasts, faint), PlotLine(xs, smoothed, color)]
            self.drawn_lines += [lasts, smoothed]
        else:
            self._lines.append(PlotLine(xs, lasts, color))
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

    def _theme(self, name: str, default: Color) -> Color:
        """A colour of the app's theme (``default`` when there is no app yet: a unit test)."""
        try:
            return Color.parse(self.app.theme_variables.get(name, default.hex))
        except Exception:  # noqa: BLE001 - no app yet, or a theme without the variable
            return default

    def _theme_look(self) -> ChartStyle:
        """The plot's background (the theme's surface) and its axis colour (the text, muted)."""
        canvas = self._theme("surface", DARK)
        axis = self._theme("foreground", Color(224, 224, 224)).blend(canvas, 0.35)
        return ChartStyle((canvas.r, canvas.g, canvas.b), (axis.r, axis.g, axis.b))

    def _faint(self, color: RGB) -> RGB:
        """``color`` blended 60% into the plot's background: what stays behind the smoothed line."""
        faint = Color(*color).blend(Color(*self._look.background), 0.6)
        return (faint.r, faint.g, faint.b)
