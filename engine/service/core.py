"""The engine's moving parts in one place: supervisor, file watcher, watch rules, GPU sampler.

One ``EngineCore`` serves a campaign; the HTTP apps (Unix socket, optional TCP) share it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from engine.runs.run_state import TERMINAL_EVENTS, last_lifecycle_event, run_status
from engine.runs.watch import Alert, WatchState, rules_for
from engine.service.gpu import GpuMonitor
from engine.service.ownership import EngineLock
from engine.service.stream import STREAM_FILES, WakeHub, read_whole_lines
from engine.service.supervisor import Supervisor
from engine.store.campaign import Campaign, RunPaths, engine_paths, ensure_private_dir, record_event
from engine.store.jsonl import JsonlWriter, read_jsonl
from engine.store.watch_rules import WatchRule

log = logging.getLogger("tunedeck.engine")

WATCH_INTERVAL_S = 0.01  # how often run files are checked for growth while anyone could care (SSE latency)
IDLE_WATCH_INTERVAL_S = 0.25  # with no client, no job and no recent change: idle CPU matters more
RECENT_CHANGE_S = 5.0
RUN_LIST_REFRESH_S = 1.0


@dataclass
class RunWatch:
    """Live watch-rule state of one run, fed with its metric lines as they land."""

    state: WatchState
    rules: list[WatchRule] = field(default_factory=list)  # the campaign's rules that watch this run
    offset: int = 0
    fired: set[str] = field(default_factory=set)


class EngineCore:
    """Everything the service does besides answering HTTP."""

    def __init__(self, campaign: Campaign, *, gpu: GpuMonitor | None = None, lock: EngineLock | None = None) -> None:
        self.campaign = campaign
        self.hub = WakeHub()
        self.supervisor = Supervisor(campaign, on_change=self.hub.wake)
        self.gpu = gpu or GpuMonitor()
        self.lock = lock or EngineLock(engine_paths(campaign.root).lock)
        self.started_at = time.time()
        self._sizes: dict[str, tuple[int, ...]] = {}
        self._watches: dict[str, RunWatch] = {}
        # Whether a run is live, cached per events.jsonl size: metrics land every step, events rarely.
        self._live: dict[str, tuple[int, bool]] = {}
        self._runs: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Take the campaign's engine lock, then adopt, launch and watch (nothing before the lock)."""
        ensure_private_dir(engine_paths(self.campaign.root).root)
        self.lock.acquire()
        await self.supervisor.start()
        self._tasks = [
            asyncio.create_task(self._watch_files(), name="file-watcher"),
            asyncio.create_task(self._sample_gpus(), name="gpu-sampler"),
        ]

    async def close(self, *, keep_lock: bool = False) -> None:
        """Stop watching and supervising (workers go on); ``keep_lock`` leaves the lock to the caller."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.supervisor.close()
        self.gpu.close()
        if not keep_lock:
            self.lock.release()

    # -- file watching: wake streams, evaluate watch rules ---------------------------------
    async def _watch_files(self) -> None:
        refreshed = 0.0
        last_change = 0.0
        while True:
            now = time.monotonic()
            if now - refreshed > RUN_LIST_REFRESH_S:
                self._runs = self.campaign.run_names()
                refreshed = now
            changed = False
            for run in self._runs:
                paths = self.campaign.run(run)
                sizes = tuple(_size(paths.root / name) for _, name in STREAM_FILES)
                if sizes != self._sizes.get(run):
                    self._sizes[run] = sizes
                    changed = True
                    self._evaluate_rules(run, paths)
            if changed:
                last_change = now
                self.hub.wake()
            busy = self.hub.subscribers or self.supervisor.active or now - last_change < RECENT_CHANGE_S
            await asyncio.sleep(WATCH_INTERVAL_S if busy else IDLE_WATCH_INTERVAL_S)

    def _rule_watch(self, run: str, paths: RunPaths) -> RunWatch | None:
        """The run's rule state, built on first sight from its history (alerts already recorded kept)."""
        if not self.campaign.config.watch:
            return None
        watch = self._watches.get(run)
        if watch is None:
            recorded = {e.get("rule") for e in read_jsonl(paths.events, strict=False) if e.get("event") == "alert"}
            rules = rules_for(self.campaign, run)
            watch = RunWatch(WatchState(rules), rules=rules, fired={r for r in recorded if r})
            self._watches[run] = watch
        return watch

    def _is_live(self, run: str, paths: RunPaths) -> bool:
        size = _size(paths.events)
        cached = self._live.get(run)
        if cached is None or cached[0] != size:
            last = last_lifecycle_event(paths.events)
            live = last is not None and last["event"] not in TERMINAL_EVENTS and last["event"] != "imported"
            cached = self._live[run] = (size, live)
        return cached[1]

    def _evaluate_rules(self, run: str, paths: RunPaths) -> None:
        if not self._is_live(run, paths):
            return  # finished runs are judged post hoc by `tunedeck watch`
        watch = self._rule_watch(run, paths)
        if watch is None:
            return
        if _size(paths.metrics) < watch.offset:
            # metrics.jsonl was replaced (an import rewrote it): judge the new file from scratch.
            watch.state = WatchState(watch.rules)
            watch.offset = 0
        lines, watch.offset = read_whole_lines(paths.metrics, watch.offset)
        for raw in lines:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            for alert in watch.state.feed(record):
                if alert.rule not in watch.fired:
                    watch.fired.add(alert.rule)
                    self._raise_alert(run, paths, alert)

    def _raise_alert(self, run: str, paths: RunPaths, alert: Alert) -> None:
        record_event(paths.events, "alert", **alert.model_dump(mode="json"))
        log.warning("%s: watch rule %s fired at step %d", run, alert.rule, alert.first_step)
        if alert.action == "stop" and run_status(run, paths).state == "running":
            self.supervisor.stop(run, reason=f"watch rule {alert.rule}: {alert.metric} at step {alert.first_step}")

    # -- GPU sampling ----------------------------------------------------------------------
    async def _sample_gpus(self) -> None:
        if not self.gpu.available:
            return
        interval = self.campaign.config.engine.sample_interval_s
        writers: dict[str, JsonlWriter] = {}
        start = time.monotonic()
        tick = 0
        try:
            while True:
                tick += 1
                # Drift-free: the k-th sample is due at start + k * interval, however long sampling took.
                await asyncio.sleep(max(0.0, start + tick * interval - time.monotonic()))
                jobs = dict(self.supervisor.active)
                pids = {job.worker_pid() for job in jobs.values()}
                sample = await asyncio.to_thread(self.gpu.sample, {p for p in pids if p})
                if sample is None:
                    continue
                self.last_gpu_sample = sample
                for run, job in jobs.items():
                    writers.setdefault(run, JsonlWriter(job.paths.system)).write(sample)
                for run in set(writers) - set(jobs):
                    writers.pop(run).close()
        finally:
            for writer in writers.values():
                writer.close()

    last_gpu_sample: dict[str, Any] | None = None


def _size(path: Any) -> int:
    try:
        return int(path.stat().st_size)
    except OSError:
        return -1
