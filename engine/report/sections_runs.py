"""The run sections: how each run's config differs from the run it came from, and what the runs cost.

A run is compared with its ``parent`` when that run exists, else with production; settings that
name or describe a run (name, description, parent) and the ``[ledger]`` / ``[cost]`` records are
not compared. Costs are the ``[cost]`` figures runs declare; a figure no run declares is "—".
"""

from __future__ import annotations

from pydantic import JsonValue

from engine.api import ConfigChange, ReportSection, RunCost
from engine.api.report import ReportBlock
from engine.decisions.facts import format_value
from engine.errors import TunedeckError
from engine.report.context import ReportContext
from engine.report.tables import MISSING, dollars, number, table, text
from engine.runs.config_diff import DESCRIPTIVE_KEYS, diff_configs, resolved_config
from engine.runs.costs import campaign_costs

NOT_SETTINGS = ("ledger.", "cost.")  # records about a run, not how it was trained
IGNORED = (*DESCRIPTIVE_KEYS, "parent", "imported_from")


def _against(ctx: ReportContext, index: int) -> str | None:
    """The run the ``index``-th run is compared with: its parent if that run exists, else production
    when production comes before it (a run that predates production was not derived from it)."""
    run = ctx.runs[index]
    known = {r.name for r in ctx.runs if r.config is not None}
    parent = run.config.parent if run.config is not None else None
    if parent in known:
        return parent
    earlier = {r.name for r in ctx.runs[:index]}
    production = ctx.production_run
    return production if production in known and production in earlier else None


def _shown(value: JsonValue) -> str:
    return MISSING if value is None else format_value(value)


def _change_rows(name: str, against: str, changes: list[ConfigChange]) -> list[list[str]]:
    shown = [c for c in changes if not c.key.startswith(NOT_SETTINGS)]
    if not shown:
        return [[name, against, "(same settings)", MISSING, MISSING]]
    rows = []
    for change in shown:
        before = MISSING if change.change == "added" else _shown(change.other)
        after = MISSING if change.change == "removed" else _shown(change.value)
        rows.append([name, against, change.key, before, after])
    return rows


def config_changes(ctx: ReportContext) -> ReportSection | None:
    """Per run: the settings that differ from its parent's (or production's)."""
    title = "Configuration changes"
    rows: list[list[str]] = []
    blocks: list[ReportBlock] = []
    alone = []
    for index, run in enumerate(ctx.runs):
        against = _against(ctx, index) if run.config is not None else None
        if against is None:
            alone.append(run.name)
            continue
        try:
            changes = diff_configs(
                resolved_config(ctx.campaign, run.name), resolved_config(ctx.campaign, against), ignore=IGNORED
            )
        except TunedeckError as exc:
            blocks.append(ctx.note(title, f"{run.name}: {exc}"))
            continue
        rows += _change_rows(run.name, against, changes)
    if not rows and not blocks:
        return None
    if rows:
        blocks.insert(0, table(["Run", "Against", "Setting", "Before", "After"], rows))
    if alone:
        blocks.append(text(f"Not compared (no parent run, and not after production): {', '.join(alone)}."))
    return ReportSection(id="config", title=title, blocks=blocks)


def costs(ctx: ReportContext) -> ReportSection | None:
    """What each run declares it cost, and the campaign's total."""
    title = "Costs"
    per_run, total, problems = campaign_costs(ctx.campaign)
    blocks: list[ReportBlock] = [ctx.note(title, problem) for problem in problems]
    if not per_run:
        return (
            ReportSection(
                id="costs", title=title, blocks=[text("No run declares a [cost] or has a measured bench."), *blocks]
            )
            if blocks
            else None
        )
    rows = []
    for run in ctx.runs:
        cost = per_run.get(run.name)
        if cost is None:
            continue
        declared = run.config.cost if run.config is not None else None
        note = declared.note if declared is not None and declared.note else MISSING
        rows.append([run.name, *_cost_figures(cost), dollars(cost.total_usd), note])
    rows.append(["**Total**", *_cost_figures(total), f"**{dollars(total.total_usd)}**", MISSING])
    headers = ["Run", "GPU hours", "Training", "Eval", "Data gen", "Judge", "Bench time", "Total", "Note"]
    legend = (
        "As each run's run.toml `[cost]` declares it, plus what tunedeck measured: the judge spend of "
        "`bench judge`, and the bench time (generation by `bench run` and `bench judge`, and judging); "
        "— where nothing is declared or measured (never counted as 0)."
    )
    return ReportSection(id="costs", title=title, blocks=[table(headers, rows), text(legend), *blocks])


def _cost_figures(cost: RunCost) -> list[str]:
    dollar_figures = (cost.training_usd, cost.eval_usd, cost.data_usd, cost.judge_usd)
    return [number(cost.gpu_hours), *(dollars(v) for v in dollar_figures), _bench_time(cost)]


def _bench_time(cost: RunCost) -> str:
    """Generation + judging seconds, with the split when both were measured."""
    if cost.generation_s is None and cost.judging_s is None:
        return MISSING
    if cost.generation_s is None or cost.judging_s is None:
        return f"{(cost.generation_s or cost.judging_s or 0):,.1f} s"
    return f"{cost.generation_s + cost.judging_s:,.1f} s ({cost.generation_s:,.1f} gen + {cost.judging_s:,.1f} judge)"
