"""One metric of one run as a plot: the widget owns its own ``plt`` and draws from a ``MetricBuffer``."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from tui.series import MetricBuffer


class MetricChart(PlotextPlot):
    """A chart of ``buffer`` over a step range; ``redraw`` does nothing unless data, range or size moved."""

    def __init__(self, metric: str, *, title: str | None = None, id: str | None = None) -> None:
        super().__init__(id=id, classes="metric-chart")
        self.buffer = MetricBuffer(metric)
        self.title = title or metric
        self._drawn: tuple[object, ...] | None = None
        self.drawn_points = 0  # buckets in the last drawing (tests and the status read it)

    def reset(self, metric: str) -> None:
        """Start over with an empty buffer (another run, or another eval metric)."""
        self.buffer = MetricBuffer(metric)
        self.title = metric
        self._drawn = None

    def redraw(self, bounds: tuple[int, int] | None) -> bool:
        """Rebuild the plot for the step range ``bounds`` (None: no data anywhere yet); True if it did."""
        key = (self.buffer.metric, self.buffer.version, bounds, self.size.width, self.size.height)
        if key == self._drawn:
            return False
        self._drawn = key
        plt = self.plt
        # clear_data on every draw: a plot first drawn empty otherwise keeps its [-1, 1] limits.
        plt.clear_data()
        plt.clear_figure()
        buckets = self.buffer.visible(*bounds, budget=max(16, self.size.width * 2)) if bounds else []
        self.drawn_points = len(buckets)
        if not buckets or bounds is None:
            plt.title(f"{self.title}: no data yet")
            self.refresh()
            return True
        steps = [b.last_step for b in buckets]
        lows, highs = [b.low for b in buckets], [b.high for b in buckets]
        newest = buckets[-1]
        plt.title(f"{self.title}   {newest.last:.4g} @ {newest.last_step}")
        plt.plot(steps, [b.last for b in buckets], marker="braille")
        if any(b.count > 1 for b in buckets):
            # The envelope of each bucket, as dots (far cheaper than lines): a spike stays visible.
            plt.scatter(steps, highs, marker="braille")
            plt.scatter(steps, lows, marker="braille")
        low, high = min(lows), max(highs)
        pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
        plt.ylim(low - pad, high + pad)  # the y-axis fits what is in view, not the whole run
        if bounds[1] > bounds[0]:
            plt.xlim(*bounds)
        self.refresh()
        return True
