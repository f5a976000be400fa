"""A run's metrics as columns in the engine's memory, so a zoom over a million steps answers in milliseconds.

Per run, per metric: three numpy arrays, ``steps`` (int64, sorted, distinct), ``values``
(float64) and ``ts`` (float64: the line's wall time, NaN where it has no finite ``ts``), holding
the metric **merged by (step, metric)** exactly as engine.store.metrics reads it: a later line
logging the same metric at the same step replaces the earlier value (a resumed run) — a later
null or text removes it — and lines whose step is not an integer are skipped. The index is built
from metrics.jsonl on first use and then follows the file (engine.service.file_follow): new whole
lines are parsed and merged in (an append past the last step is a plain append; an older step
triggers one stable re-sort of that metric), and a file that shrank or was replaced is indexed
again from scratch. Values that are not numbers (null, text, a bool) are not points of a series;
the metric still has a name, and its latest value is None when that is what was logged last.

Decimation (``decimate``): the range's first point is a bucket of its own; the other points are
cut into at most ``buckets - 1`` buckets of equal step width, empty buckets left out. A bucket's
``first_step``/``last_step`` are the steps of its first and last logged points, ``last`` the
value at ``last_step`` (so the range's last point is always there), ``count`` its points. Its
``min``/``max`` ignore NaN and ±inf when the bucket has a finite value (a plot's y-axis stays
usable); a bucket of only non-finite values has min/max over its infinities, or NaN when it holds
only NaN. A range with at most ``buckets`` points answers one bucket per point. ``first_ts`` and
``last_ts`` are the wall times of the lines of those two points (None where a line had no ts): the
TUI's x-axis by wall time.

Memory: 24 bytes per point per metric (a 1M-step run logging four metrics: 96 MB), so at most
``MAX_RUNS`` runs are kept, the least recently asked one dropped first.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.api import MetricNames, MetricSeries, SeriesBucket
from engine.errors import NotFoundError, TunedeckError
from engine.service.file_follow import FileFollower
from engine.store.metrics import NON_METRIC_KEYS

MAX_RUNS = 8
_NUMBER_TYPES = (int, float)  # exact types, so a bool (a subclass of int) is no number
_NUMBER_TYPES_SET = frozenset(_NUMBER_TYPES)
_EMPTY_STEPS = np.empty(0, dtype=np.int64)
_EMPTY_VALUES = np.empty(0, dtype=np.float64)
_ABSENT = object()  # a line that does not log the metric at all


@dataclass
class Column:
    """One metric: sorted distinct steps, the value that won at each, and its line's wall time."""

    steps: np.ndarray = field(default_factory=lambda: _EMPTY_STEPS)
    values: np.ndarray = field(default_factory=lambda: _EMPTY_VALUES)
    ts: np.ndarray = field(default_factory=lambda: _EMPTY_VALUES)

    def merge(self, steps: np.ndarray, values: np.ndarray, ts: np.ndarray, points: np.ndarray | None = None) -> None:
        """Merge new entries (in file order, after every point already held): later wins per step.

        ``points`` marks the entries that are values; the others (a null, a text, a bool logged
        for the metric) are no points but still win their step, removing a value an earlier line
        gave it — as ``engine.store.metrics.merge_by_step`` does. None: every entry is a point.
        """
        increasing = steps.size < 2 or bool(np.all(steps[1:] > steps[:-1]))
        if increasing and (self.steps.size == 0 or steps[0] > self.steps[-1]):
            if points is not None:  # nothing earlier to remove: the non-points just go
                steps, values, ts = steps[points], values[points], ts[points]
            self.steps = np.concatenate((self.steps, steps))
            self.values = np.concatenate((self.values, values))
            self.ts = np.concatenate((self.ts, ts))
            return
        all_steps = np.concatenate((self.steps, steps))
        order = np.argsort(all_steps, kind="stable")  # equal steps stay in file order
        sorted_steps = all_steps[order]
        keep = np.ones(sorted_steps.size, dtype=bool)
        keep[:-1] = sorted_steps[1:] != sorted_steps[:-1]  # the last entry of each step wins
        if points is not None:
            keep &= np.concatenate((np.ones(self.steps.size, dtype=bool), points))[order]
        self.steps = sorted_steps[keep]
        self.values = np.concatenate((self.values, values))[order][keep]
        self.ts = np.concatenate((self.ts, ts))[order][keep]


@dataclass
class RunIndex:
    """Every metric of one metrics.jsonl file, following the file as it grows."""

    follower: FileFollower
    columns: dict[str, Column] = field(default_factory=dict)
    latest: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    step_set: Column = field(default_factory=Column)  # steps of every line (values unused)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self) -> None:
        """Take in what was appended since the last call (or everything, after a replace)."""
        found = self.follower.read_new()
        if found.restart:
            self.columns, self.latest, self.step_set = {}, {}, Column()
        if found.lines:
            self._add(_parse(found.lines))

    def _add(self, records: list[dict[str, Any]]) -> None:
        # The hot path of opening a long run (1M lines): one pass per metric in list comprehensions and
        # numpy, not a Python loop over every (line, key). Exact type checks: json.loads gives
        # true/false as bool, which is never a number (nor an integer step).
        lines = [record for record in records if type(record.get("step")) is int]
        if not lines:
            return
        n = len(lines)
        steps = np.array([record["step"] for record in lines], dtype=np.int64)
        stamps = [record.get("ts", math.nan) for record in lines]
        if not set(map(type, stamps)) <= _NUMBER_TYPES_SET:
            stamps = [t if type(t) in _NUMBER_TYPES else math.nan for t in stamps]
        ts = np.array(stamps, dtype=np.float64)
        keys = set().union(*lines) - NON_METRIC_KEYS
        for key in keys:
            logged = [record.get(key, _ABSENT) for record in lines]
            if set(map(type, logged)) <= _NUMBER_TYPES_SET:  # the usual case: a number on every line
                self._note_latest(key, steps, logged)
                self.columns.setdefault(key, Column()).merge(steps, np.array(logged, dtype=np.float64), ts)
                continue
            present = np.array([value is not _ABSENT for value in logged], dtype=bool)
            where = np.flatnonzero(present)
            entries = [logged[i] for i in where.tolist()] if where.size < n else logged
            is_point = np.array([type(value) in _NUMBER_TYPES for value in entries], dtype=bool)
            values = np.array(
                [value if type(value) in _NUMBER_TYPES else math.nan for value in entries], dtype=np.float64
            )
            key_steps = steps[where]
            self._note_latest(key, key_steps, entries)
            points = None if bool(is_point.all()) else is_point
            self.columns.setdefault(key, Column()).merge(key_steps, values, ts[where], points)
        self.step_set.merge(steps, np.zeros(n), np.zeros(n))

    def _note_latest(self, key: str, steps: np.ndarray, entries: list[Any]) -> None:
        """The value at the metric's highest step (the last line of that step; None if not a number)."""
        top = int(steps.max())
        seen = self.latest.get(key)
        if seen is not None and top < seen[0]:
            return
        value = entries[int(np.flatnonzero(steps == top)[-1])]
        self.latest[key] = (top, float(value) if type(value) in _NUMBER_TYPES else None)

    def series(self, run: str, metric: str, start: int | None, end: int | None, buckets: int) -> MetricSeries:
        if metric not in self.latest:
            raise NotFoundError(f"run {run!r} never logged metric {metric!r}")
        column = self.columns.get(metric, Column())
        lo = 0 if start is None else int(np.searchsorted(column.steps, start, side="left"))
        hi = column.steps.size if end is None else int(np.searchsorted(column.steps, end, side="right"))
        steps, values, ts = column.steps[lo:hi], column.values[lo:hi], column.ts[lo:hi]
        return MetricSeries.model_construct(
            run=run,
            metric=metric,
            start=start,
            end=end,
            points=int(steps.size),
            buckets=decimate(steps, values, buckets, ts),
        )

    def names(self, run: str) -> MetricNames:
        latest = {key: value for key, (_, value) in sorted(self.latest.items())}
        return MetricNames(run=run, steps=int(self.step_set.steps.size), latest=latest)


def _parse(lines: list[bytes]) -> list[dict[str, Any]]:
    """The JSON objects among ``lines`` (one ``json.loads`` for all; line by line when one is bad)."""
    try:
        parsed = json.loads(b"[" + b",".join(line for line in lines if line.strip()) + b"]")
    except ValueError:
        parsed = []
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except ValueError:
                continue  # a torn or hand-broken line: skipped, as every reader of metrics skips it
    return [record for record in parsed if isinstance(record, dict)]


def decimate(steps: np.ndarray, values: np.ndarray, buckets: int, ts: np.ndarray) -> list[SeriesBucket]:
    """Min / max / last / count per bucket, with the wall times of its ends (rules in the module's docstring)."""
    n = steps.size
    if n == 0:
        return []
    if n <= buckets:
        return [
            SeriesBucket.model_construct(
                first_step=s, last_step=s, min=v, max=v, last=v, count=1, first_ts=t, last_ts=t
            )
            for s, v, t in zip(steps.tolist(), values.tolist(), _stamps(ts), strict=True)
        ]
    (t0,) = _stamps(ts[:1])
    first = SeriesBucket.model_construct(
        first_step=int(steps[0]), last_step=int(steps[0]), min=float(values[0]), max=float(values[0]),
        last=float(values[0]), count=1, first_ts=t0, last_ts=t0,
    )  # fmt: skip
    rest_steps, rest_values, rest_ts = steps[1:], values[1:], ts[1:]
    width = int(rest_steps[-1] - rest_steps[0]) + 1
    slots = buckets - 1
    # Integer arithmetic: bucket k holds steps in [s0 + k*width/slots, s0 + (k+1)*width/slots).
    bucket_of = ((rest_steps - rest_steps[0]) * slots) // width
    starts = np.flatnonzero(np.diff(bucket_of, prepend=-1))
    ends = np.append(starts[1:], rest_steps.size) - 1
    lows, highs = _min_max(rest_values, starts)
    out = [first]
    for a, b, low, high, last, count, ta, tb in zip(
        rest_steps[starts].tolist(),
        rest_steps[ends].tolist(),
        lows.tolist(),
        highs.tolist(),
        rest_values[ends].tolist(),
        (ends - starts + 1).tolist(),
        _stamps(rest_ts[starts]),
        _stamps(rest_ts[ends]),
        strict=True,
    ):
        out.append(
            SeriesBucket.model_construct(
                first_step=a, last_step=b, min=low, max=high, last=last, count=count, first_ts=ta, last_ts=tb
            )
        )
    return out


def _stamps(ts: np.ndarray) -> list[float | None]:
    """Wall times as floats, None for a line without a (finite) ts."""
    return [t if math.isfinite(t) else None for t in ts.tolist()]


def _min_max(values: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per bucket: min and max over finite values, else over infinities, else NaN."""
    finite = np.isfinite(values)
    lows = np.minimum.reduceat(np.where(finite, values, np.inf), starts)
    highs = np.maximum.reduceat(np.where(finite, values, -np.inf), starts)
    no_finite = np.add.reduceat(finite, starts) == 0
    if no_finite.any():
        # fmin/fmax skip NaN: a bucket of only ±inf gets its infinities; one of only NaN gets NaN.
        lows = np.where(no_finite, np.fmin.reduceat(values, starts), lows)
        highs = np.where(no_finite, np.fmax.reduceat(values, starts), highs)
    return lows, highs


class MetricIndexes:
    """The engine's indexes of run metrics, one per run, at most ``MAX_RUNS`` kept."""

    def __init__(self, max_runs: int = MAX_RUNS) -> None:
        self._runs: OrderedDict[Path, RunIndex] = OrderedDict()
        self._lock = threading.Lock()
        self._max_runs = max_runs

    def _index(self, metrics_path: Path) -> RunIndex:
        with self._lock:
            index = self._runs.get(metrics_path)
            if index is None:
                index = self._runs[metrics_path] = RunIndex(FileFollower(metrics_path))
            self._runs.move_to_end(metrics_path)
            while len(self._runs) > self._max_runs:
                self._runs.popitem(last=False)
            return index

    def series(
        self, run: str, metrics_path: Path, metric: str, start: int | None, end: int | None, buckets: int
    ) -> MetricSeries:
        """``GET /runs/{run}/series``: the metric over [start, end], decimated to at most ``buckets``."""
        if start is not None and end is not None and start > end:
            raise TunedeckError(f"bad step range: start {start} is after end {end}", field="start")
        index = self._index(metrics_path)
        with index.lock:
            index.refresh()
            return index.series(run, metric, start, end, buckets)

    def names(self, run: str, metrics_path: Path) -> MetricNames:
        """``GET /runs/{run}/metric-names``: every metric logged, with its latest value."""
        index = self._index(metrics_path)
        with index.lock:
            index.refresh()
            return index.names(run)
