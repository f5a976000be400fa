"""The Monitor's data: one bounded buffer per (run, metric) asked for, the names each run logged, colours.

Buffers are made when a chart of the page needs them and kept (at most ``BUFFER_CAP``, the least
recently shown dropped first) so paging back is instant; live lines go into the buffers held, so a
kept one stays current. History comes decimated from the engine's ``/runs/{run}/series``; an older
engine without it sends its whole metrics.jsonl once per run, decimated here.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from typing import Any

from tui.client import EndpointMissing, EngineClient
from tui.series import Bucket, MetricBuffer, buckets_from_series, decimate, number, points_from_records

BUFFER_CAP = 48
NON_METRIC_KEYS = frozenset({"step", "ts"})
# One colour per run for the session, in the order runs are first shown (the legend names them).
RUN_COLORS: tuple[tuple[int, int, int], ...] = (
    (86, 156, 214),
    (236, 150, 60),
    (110, 196, 110),
    (214, 96, 170),
    (222, 204, 86),
    (86, 204, 204),
    (220, 86, 86),
    (166, 136, 226),
)


class SeriesCache:
    """Buffers, names and (for an older engine) whole metric files, per run."""

    def __init__(self, client: EngineClient) -> None:
        self.client = client
        self.buffers: OrderedDict[tuple[str, str], MetricBuffer] = OrderedDict()
        self.names: dict[str, set[str]] = {}
        self.records: dict[str, list[dict[str, Any]]] = {}  # the fallback: a run's whole metrics.jsonl
        self.colors: dict[str, tuple[int, int, int]] = {}
        self.fallback_noted = False

    def color(self, run: str) -> tuple[int, int, int]:
        """The run's colour, the same on every chart for the session."""
        if run not in self.colors:
            self.colors[run] = RUN_COLORS[len(self.colors) % len(RUN_COLORS)]
        return self.colors[run]

    def buffer(self, run: str, metric: str) -> MetricBuffer:
        """The run's buffer of ``metric`` (made empty on first use; the oldest unused dropped past the cap)."""
        key = (run, metric)
        found = self.buffers.get(key)
        if found is None:
            found = self.buffers[key] = MetricBuffer(metric)
        self.buffers.move_to_end(key)
        while len(self.buffers) > BUFFER_CAP:
            self.buffers.popitem(last=False)
        return found

    def forget(self, keep: set[str]) -> None:
        """Drop what is held for runs not in ``keep``."""
        for key in [k for k in self.buffers if k[0] not in keep]:
            del self.buffers[key]
        for table in (self.names, self.records):
            for run in [r for r in table if r not in keep]:
                del table[run]

    def t0(self, run: str) -> float | None:
        """The wall time of the run's earliest point held (the origin of the wall-time x-axis)."""
        stamps = [b.first_ts for (r, _), b in self.buffers.items() if r == run and b.first_ts is not None]
        return min(stamps) if stamps else None

    async def load_names(self, run: str) -> set[str]:
        """The metrics ``run`` logged (from the engine, or from its whole metrics file)."""
        if run not in self.records:
            try:
                found = set((await self.client.metric_names(run)).latest)
                self.names[run] = self.names.get(run, set()) | found
                return self.names[run]
            except EndpointMissing:
                self.records[run] = await self.client.metrics(run)
        found = {key for record in self.records[run] for key in record if key not in NON_METRIC_KEYS}
        self.names[run] = self.names.get(run, set()) | found
        return self.names[run]

    async def buckets(self, run: str, metric: str, start: int | None, end: int | None, budget: int) -> list[Bucket]:
        """``run``'s ``metric`` over [start, end] in at most ``budget`` buckets."""
        if run not in self.records:
            try:
                series = await self.client.series(run, metric, start=start, end=end, buckets=budget)
                return buckets_from_series(series)
            except EndpointMissing:
                self.records[run] = await self.client.metrics(run)
        points = points_from_records(self.records[run], metric)
        lo, hi = start if start is not None else -math.inf, end if end is not None else math.inf
        return decimate((p for p in points if lo <= p[0] <= hi), budget)

    async def load_histories(self, wanted: list[tuple[str, MetricBuffer]], budget: int) -> None:
        """The whole-run history of each (run, buffer) not loaded yet, asked for at once."""
        todo = [(run, buffer) for run, buffer in wanted if not buffer.loaded]
        found = await asyncio.gather(*(self.buckets(run, b.metric, None, None, budget) for run, b in todo))
        for (_, buffer), buckets in zip(todo, found, strict=True):
            buffer.set_history(buckets)

    async def load_details(self, wanted: list[tuple[str, MetricBuffer, int]], bounds: tuple[int, int]) -> None:
        """Finer buckets of each (run, buffer, budget) for the zoomed step range."""
        found = await asyncio.gather(*(self.buckets(run, b.metric, *bounds, budget) for run, b, budget in wanted))
        for (_, buffer, _), buckets in zip(wanted, found, strict=True):
            buffer.set_detail(*bounds, buckets)

    def feed(self, run: str, records: list[dict[str, Any]]) -> set[str]:
        """Live lines of ``run`` into its buffers held; returns the metric names the lines carry."""
        held = {metric: buffer for (r, metric), buffer in self.buffers.items() if r == run}
        seen: set[str] = set()
        for record in records:
            step = record.get("step")
            if not isinstance(step, int) or isinstance(step, bool):
                continue
            seen.update(record)
            ts = number(record.get("ts"))
            for metric, buffer in held.items():
                value = number(record.get(metric))
                if value is not None:
                    buffer.append(step, value, ts)
        if run in self.records:
            self.records[run].extend(records)
        seen -= NON_METRIC_KEYS
        if run in self.names:
            self.names[run] |= seen
        return seen
