"""What the Monitor plots, kept out of the widgets: bounded metric buffers, decimation, the view window.

Every point a run logged is on disk; the TUI holds only a decimated history (min / max / last per
bucket, from the engine's series endpoint or decimated here from /metrics) plus a bounded buffer of
live points from the stream. Min/max per bucket keeps a grad-norm spike visible at any zoom, where
sampling every k-th point or averaging would hide it. Each bucket carries the wall time of its first
and last points (the x-axis by wall time). Smoothing (``ema``) is for drawing only: it runs over the
``last`` values of the buckets in view, so it smooths what is on screen, not every logged point.
No numpy: the TUI stays a light client.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from engine.api import MetricSeries

LIVE_CAP = 4000  # live points held one by one; older ones are folded into buckets
HISTORY_CAP = 4000  # buckets of history; past that, neighbours are merged in pairs
MIN_SPAN = 8  # the narrowest zoom, in steps


@dataclass(frozen=True, slots=True)
class Bucket:
    """Every finite value of one metric with ``first_step <= step <= last_step``, reduced."""

    first_step: int
    last_step: int
    low: float
    high: float
    last: float
    count: int
    first_ts: float | None = None  # wall time of the first point's line (None: the line had no ts)
    last_ts: float | None = None

    @classmethod
    def point(cls, step: int, value: float, ts: float | None = None) -> Bucket:
        """A bucket holding one logged value."""
        return cls(step, step, value, value, value, 1, ts, ts)


def merge(buckets: Sequence[Bucket]) -> Bucket:
    """Consecutive buckets as one (min of mins, max of maxes, the last one's last)."""
    return Bucket(
        buckets[0].first_step,
        buckets[-1].last_step,
        min(b.low for b in buckets),
        max(b.high for b in buckets),
        buckets[-1].last,
        sum(b.count for b in buckets),
        buckets[0].first_ts,
        buckets[-1].last_ts,
    )


def reduce_to(buckets: Sequence[Bucket], budget: int) -> list[Bucket]:
    """At most ``budget`` buckets, merging neighbours in equal groups (first and last steps kept)."""
    if budget <= 0 or len(buckets) <= budget:
        return list(buckets)
    size = math.ceil(len(buckets) / budget)
    return [merge(buckets[i : i + size]) for i in range(0, len(buckets), size)]


def decimate(points: Iterable[tuple[int, float, float | None]], budget: int) -> list[Bucket]:
    """Min/max/last per bucket of (step, value, ts) points in step order; non-finite values are left out."""
    finite = [Bucket.point(step, value, ts) for step, value, ts in points if math.isfinite(value)]
    return reduce_to(finite, budget)


def buckets_from_series(series: MetricSeries) -> list[Bucket]:
    """The engine's decimated series as buckets (buckets whose figures are not finite dropped)."""
    return [
        Bucket(b.first_step, b.last_step, b.min, b.max, b.last, b.count, b.first_ts, b.last_ts)
        for b in series.buckets
        if math.isfinite(b.min) and math.isfinite(b.max) and math.isfinite(b.last)
    ]


def number(value: object) -> float | None:
    """``value`` as a float when it is a number (not a bool), else None."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def points_from_records(records: Iterable[Mapping[str, object]], metric: str) -> list[tuple[int, float, float | None]]:
    """(step, value, ts) of ``metric`` in metrics.jsonl records; the later record of a step wins (a resume)."""
    by_step: dict[int, tuple[float, float | None]] = {}
    for record in records:
        step, value = record.get("step"), number(record.get(metric))
        if isinstance(step, int) and not isinstance(step, bool) and value is not None:
            ts = number(record.get("ts"))
            by_step[step] = (value, ts if ts is not None and math.isfinite(ts) else None)
    return [(step, value, ts) for step, (value, ts) in sorted(by_step.items())]


def ema(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average, debiased as TensorBoard's (the first values are not pulled to 0)."""
    out: list[float] = []
    smoothed, debias = 0.0, 1.0
    for value in values:
        smoothed = smoothed * weight + (1 - weight) * value
        debias *= weight
        out.append(smoothed / (1 - debias) if debias < 1 else value)
    return out


@dataclass
class MetricBuffer:
    """One metric of one run: a decimated history, a finer view of a zoomed range, live points."""

    metric: str
    history: list[Bucket] = field(default_factory=list)
    detail: list[Bucket] = field(default_factory=list)
    detail_range: tuple[int, int] | None = None
    live: deque[Bucket] = field(default_factory=deque)
    version: int = 0  # bumped on every change, so a chart redraws only when its data moved
    loaded: bool = False  # its history came from the engine (or the fallback) at least once

    @property
    def first_step(self) -> int | None:
        """The first step with a value, None when empty."""
        for part in (self.history, self.live):
            if part:
                return part[0].first_step
        return None

    @property
    def last_step(self) -> int | None:
        """The newest step with a value, None when empty."""
        for part in (self.live, self.history):
            if part:
                return part[-1].last_step
        return None

    @property
    def first_ts(self) -> float | None:
        """The wall time of the first point, None when unknown."""
        for part in (self.history, self.live):
            if part:
                return part[0].first_ts
        return None

    def set_history(self, buckets: list[Bucket]) -> None:
        """Replace the whole-run history; live points it already covers are dropped."""
        self.history = reduce_to(buckets, HISTORY_CAP)
        end = self.history[-1].last_step if self.history else -1
        self.live = deque(b for b in self.live if b.first_step > end)
        self.loaded = True
        self.version += 1

    def set_detail(self, start: int, end: int, buckets: list[Bucket]) -> None:
        """Finer buckets for the step range a zoom shows (asked for again on every zoom)."""
        self.detail, self.detail_range = buckets, (start, end)
        self.version += 1

    def append(self, step: int, value: float, ts: float | None = None) -> None:
        """A live point; a step at or before the newest is a rewrite after a resume and replaces it."""
        if not math.isfinite(value):
            return
        last = self.last_step
        if last is not None and step <= last:
            if self.live and self.live[-1].last_step == step:
                self.live[-1] = Bucket.point(step, value, ts)
                self.version += 1
            return
        self.live.append(Bucket.point(step, value, ts))
        if len(self.live) > LIVE_CAP:
            self._fold()
        self.version += 1

    def _fold(self) -> None:
        """Move the older half of the live points into the history, decimated (memory stays bounded)."""
        half = [self.live.popleft() for _ in range(len(self.live) // 2)]
        self.history.extend(reduce_to(half, max(1, len(half) // 8)))
        if len(self.history) > HISTORY_CAP:
            self.history = reduce_to(self.history, HISTORY_CAP // 2)

    def visible(self, start: int, end: int, budget: int) -> list[Bucket]:
        """The buckets overlapping [start, end], at most ``budget`` of them, finest data first."""
        source = self.history
        if self.detail_range is not None and self.detail_range[0] <= start and end <= self.detail_range[1]:
            source = self.detail
        inside = [b for b in source if b.last_step >= start and b.first_step <= end]
        seen = inside[-1].last_step if inside else -1
        inside.extend(b for b in self.live if start <= b.first_step <= end and b.first_step > seen)
        return reduce_to(inside, budget)


@dataclass
class ViewWindow:
    """The step range the Monitor shows: all of it, or ``span`` steps ending at ``end`` (None: the newest)."""

    span: int | None = None
    end: int | None = None

    @property
    def live(self) -> bool:
        """Whether the window follows the newest step."""
        return self.end is None

    def bounds(self, first: int, last: int) -> tuple[int, int]:
        """The [start, end] in view of data running from ``first`` to ``last``."""
        if self.span is None or last - first <= self.span:
            return first, last
        hi = last if self.end is None else max(first + self.span, min(self.end, last))
        return max(first, hi - self.span), hi

    def zoom_in(self, first: int, last: int) -> None:
        """Halve the span, keeping the right edge (the newest point while live)."""
        start, end = self.bounds(first, last)
        self.span = max(MIN_SPAN, (end - start) // 2)

    def zoom_out(self, first: int, last: int) -> None:
        """Double the span; at the whole run, back to showing everything."""
        if self.span is None:
            return
        self.span *= 2
        if self.span >= last - first:
            self.span, self.end = None, None

    def pan(self, direction: int, first: int, last: int) -> None:
        """Move a quarter of the span left (-1) or right (+1); reaching the newest step follows it again."""
        if self.span is None:
            return
        _, end = self.bounds(first, last)
        new_end = end + direction * max(1, self.span // 4)
        self.end = None if new_end >= last else max(first + self.span, new_end)


@dataclass
class StepRate:
    """Steps per second over the last few logged (step, wall time) pairs."""

    samples: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=32))

    def add(self, step: int, ts: float) -> None:
        """Note that ``step`` was logged at wall time ``ts``."""
        if not self.samples or step > self.samples[-1][0]:
            self.samples.append((step, ts))

    @property
    def per_second(self) -> float | None:
        """Steps per second, None until two samples span some time."""
        if len(self.samples) < 2:
            return None
        (s0, t0), (s1, t1) = self.samples[0], self.samples[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else None
