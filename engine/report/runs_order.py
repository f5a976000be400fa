"""The campaign's runs in the order a write-up tells them, and the bench refs placed among them.

Order: by ``[ledger] date`` when the run declares one, else by the day of its first event (an
imported or created run's first line in events.jsonl), else by its run.toml's modification
time; ties by that first timestamp, then by name. A checkpoint's bench ref (``RUN@STEP``) is not
a run: it comes right after its run, by step. A ref whose run has no run.toml goes last.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

from engine.bench.store import parse_ref
from engine.errors import TunedeckError
from engine.store.campaign import Campaign
from engine.store.config import RunConfig
from engine.store.jsonl import iter_jsonl

FAR_FUTURE = datetime.date.max


@dataclass(frozen=True)
class ReportRun:
    """A run of the report: its config (None when run.toml is not valid: ``problem`` says why) and its day."""

    name: str
    config: RunConfig | None
    problem: str | None
    date: datetime.date | None
    first_ts: float | None

    @property
    def sort_key(self) -> tuple[datetime.date, float, str]:
        """(day, first timestamp, name): undated runs last."""
        return (self.date or FAR_FUTURE, self.first_ts if self.first_ts is not None else float("inf"), self.name)


def _first_ts(campaign: Campaign, name: str) -> float | None:
    """The first event's time, else run.toml's modification time; None when neither can be read."""
    paths = campaign.run(name)
    try:
        if paths.events.is_file():
            for line in iter_jsonl(paths.events, strict=False):
                ts = line.record.get("ts")
                if isinstance(ts, int | float) and not isinstance(ts, bool):
                    return float(ts)
        return os.stat(paths.run_toml).st_mtime
    except (OSError, TunedeckError):
        return None


def _utc_day(ts: float | None) -> datetime.date | None:
    return None if ts is None else datetime.datetime.fromtimestamp(ts, datetime.UTC).date()


def load_run(campaign: Campaign, name: str) -> ReportRun:
    """One run as the report sees it; an invalid run.toml is kept, with the reason."""
    first = _first_ts(campaign, name)
    try:
        config: RunConfig | None = campaign.load_run(name)
        problem = None
    except TunedeckError as exc:
        config, problem = None, str(exc)
    declared = config.ledger.date if config is not None and config.ledger is not None else None
    return ReportRun(name=name, config=config, problem=problem, date=declared or _utc_day(first), first_ts=first)


def ordered_runs(campaign: Campaign) -> list[ReportRun]:
    """Every run with a run.toml, in the report's order."""
    return sorted((load_run(campaign, name) for name in campaign.run_names()), key=lambda run: run.sort_key)


def ordered_refs(runs: list[ReportRun], refs: list[str]) -> list[str]:
    """Bench refs in the runs' order: a run, then its checkpoints by step; refs of unknown runs last."""
    position = {run.name: index for index, run in enumerate(runs)}

    def key(ref: str) -> tuple[int, str, int]:
        parsed = parse_ref(ref)
        return (position.get(parsed.run, len(runs)), parsed.run, -1 if parsed.step is None else parsed.step)

    return sorted(set(refs), key=key)
