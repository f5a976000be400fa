"""``GET /runs/{run}/overview``: a run's resolved config, its differences from production's config, its figures.

One request for the TUI's overview screen, so the TUI never parses TOML or opens the bench cache
itself. The figures are the run's row of ``/runs/summary`` (engine.service.run_summary) plus the
time it spent training, summed over its launches from events.jsonl. A run.toml that does not
validate still gets its figures, with the one-line error in ``config_error``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from pydantic import JsonValue

from engine.api import ConfigChange, RunOverview, RunSummary
from engine.errors import NotFoundError, TunedeckError
from engine.runs.config_diff import diff_configs, resolved_config, sections
from engine.service.run_summary import RunSummaries
from engine.store.campaign import Campaign
from engine.store.jsonl import read_jsonl
from engine.store.production import read_production

LAUNCH_EVENTS = frozenset({"started", "resumed"})
END_EVENTS = frozenset({"stopped", "finished", "failed"})


def add_overview_routes(app: FastAPI, campaign: Campaign, summaries: RunSummaries) -> None:
    """Register ``GET /runs/{run}/overview``; its figures are ``/runs/summary``'s, from the same followers."""

    @app.get("/runs/{run}/overview", response_model=RunOverview)
    def overview(run: str) -> RunOverview:
        return run_overview(campaign, summaries, run)


def run_overview(campaign: Campaign, summaries: RunSummaries, run: str) -> RunOverview:
    """Everything the overview screen shows about ``run``."""
    paths = campaign.run(run)
    if not paths.run_toml.is_file():
        raise NotFoundError(f"no run named {run!r} in this campaign", path=paths.run_toml)
    config: dict[str, JsonValue] | None = None
    config_error = None
    try:
        config = resolved_config(campaign, run)
    except TunedeckError as exc:
        config_error = str(exc)
    production, diff, note = _production_diff(campaign, run, config)
    events = read_jsonl(paths.events, strict=False)
    summary = _summary(summaries, run)
    return RunOverview(
        run=run,
        config=sections(config) if config is not None else [],
        config_error=config_error,
        production=production,
        production_diff=diff,
        production_note=note,
        summary=summary,
        runtime_s=training_seconds(events, running=summary.state in ("running", "stopping")),
    )


def _summary(summaries: RunSummaries, run: str) -> RunSummary:
    for row in summaries.summaries():
        if row.run == run:
            return row
    raise NotFoundError(f"no run named {run!r} in this campaign")  # removed between the two reads


def _production_diff(
    campaign: Campaign, run: str, config: dict[str, JsonValue] | None
) -> tuple[str | None, list[ConfigChange] | None, str | None]:
    """(production's run, the diff against it, why there is no diff)."""
    try:
        pointer = read_production(campaign)
    except TunedeckError as exc:
        return None, None, f"production is unreadable: {exc}"
    if pointer is None:
        return None, None, "no run is in production yet"
    production = str(pointer["run"])
    if production == run:
        return production, None, "this run is in production"
    if config is None:
        return production, None, "this run's run.toml cannot be read (see above)"
    try:
        theirs = resolved_config(campaign, production)
    except TunedeckError as exc:
        return production, None, f"production's config cannot be read: {exc}"
    return production, diff_configs(config, theirs), None


def training_seconds(events: list[dict[str, Any]], *, running: bool, now: float | None = None) -> float | None:
    """Seconds between each launch (started/resumed) and the end that followed it; a live launch counts to ``now``.

    A resume logs ``resumed`` then ``started``: the launch counts from the first of them. None when
    the run was never launched here (an imported run).
    """
    total, since, launched = 0.0, None, False
    for event in events:
        kind, ts = event.get("event"), event.get("ts")
        if not isinstance(ts, int | float):
            continue
        if kind in LAUNCH_EVENTS and since is None:
            since, launched = float(ts), True
        elif kind in END_EVENTS and since is not None:
            total += max(0.0, float(ts) - since)
            since = None
    if since is not None and running:
        total += max(0.0, (now if now is not None else time.time()) - since)
    return round(total, 3) if launched else None
