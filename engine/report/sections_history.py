"""The history sections: alerts the watch rules raised, the decision walks saved, promotes and reverts.

Each reads what the matching command reads (``tunedeck watch``, ``decide``, ``history``); a file
that cannot be read (a malformed registry line, a saved walk that is not one) is one line in
its section, and the rest of the section is still written.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.api import DecisionWalk, RegistryEntry, ReportSection
from engine.api.report import ReportBlock
from engine.decisions.facts import format_value
from engine.decisions.registry import history
from engine.decisions.saved_walks import list_walks, load_walk
from engine.errors import TunedeckError
from engine.report.context import ReportContext
from engine.report.tables import MISSING, table, text
from engine.runs.watch import watch_report


def alerts(ctx: ReportContext) -> ReportSection | None:
    """Every watch rule that fired, per run; left out when campaign.toml declares no rules."""
    title = "Alerts"
    if not ctx.campaign.config.watch:
        return None
    rows: list[list[str]] = []
    blocks: list[ReportBlock] = []
    for run in ctx.runs:
        try:
            report = watch_report(ctx.campaign, run.name)
        except TunedeckError as exc:
            blocks.append(ctx.note(title, f"{run.name}: {exc}"))
            continue
        for a in report.alerts:
            rows.append([run.name, a.rule, a.metric, str(a.first_step), format_value(a.value), str(a.count), a.action])
    if not rows:
        rules = len(ctx.campaign.config.watch)
        blocks.insert(0, text(f"No alerts fired: {rules} watch rules over {len(ctx.runs)} runs' metrics."))
        return ReportSection(id="alerts", title=title, blocks=blocks)
    headers = ["Run", "Rule", "Metric", "First step", "Value", "Times", "Action"]
    return ReportSection(id="alerts", title=title, blocks=[table(headers, rows), *blocks])


def _recommendation_blocks(walk: DecisionWalk) -> list[ReportBlock]:
    """A walk's recommendation: its title, reasons as a list, and the config patch as a table."""
    rec = walk.recommendation
    if rec is None:
        return []
    blocks: list[ReportBlock] = [text(f"**{walk.run}, walk {walk.walk}: {rec.id}** — {rec.title}")]
    blocks.append(text("\n".join(f"- {' '.join(reason.split())}" for reason in rec.reasons) or "- (no reasons)"))
    patch = _flat_patch(rec.config_patch) + [[key, "(removed)"] for key in rec.config_unset]
    if patch:
        blocks.append(table(["Setting", "Next run"], patch))
    return blocks


def _flat_patch(patch: Mapping[str, object], prefix: str = "") -> list[list[str]]:
    rows = []
    for key, value in patch.items():
        if isinstance(value, dict):
            rows += _flat_patch(value, f"{prefix}{key}.")
        else:
            rows.append([f"{prefix}{key}", format_value(value)])
    return rows


def decision_walks(ctx: ReportContext) -> ReportSection | None:
    """Every saved walk; the latest recommendation of each run in full. Left out when none was saved."""
    title = "Decision walks"
    rows: list[list[str]] = []
    blocks: list[ReportBlock] = []
    details: list[ReportBlock] = []
    for run in ctx.runs:
        try:
            walks = list_walks(ctx.campaign, run.name) if run.config is not None else []
            for walk in walks:
                answers = ", ".join(f"{k}={v}" for k, v in walk.answers.items()) or MISSING
                rows.append(
                    [run.name, walk.walk, walk.created_at, walk.status, walk.recommendation or MISSING, answers]
                )
            latest = next((w for w in reversed(walks) if w.recommendation), None)
            if latest is not None:
                details += _recommendation_blocks(load_walk(ctx.campaign, run.name, latest.walk))
        except TunedeckError as exc:
            blocks.append(ctx.note(title, f"{run.name}: {exc}"))
    if not rows and not blocks:
        return None
    if rows:
        blocks.insert(0, table(["Run", "Walk", "Created", "Status", "Recommendation", "Answers"], rows))
    return ReportSection(id="decisions", title=title, blocks=[*blocks, *details])


def _entry_row(entry: RegistryEntry) -> list[str]:
    action = entry.action if entry.undoes is None else f"revert of #{entry.undoes}"
    gate = MISSING
    if entry.gate is not None:
        gate = "rejected" if entry.gate.verdict == "failed" else entry.gate.verdict
        gate += " (forced)" if entry.gate.forced else ""
    change = f"{entry.from_run or 'nothing'} → {entry.to_run or 'nothing'}"
    return [f"#{entry.seq}", entry.time, action, change, gate, f"{entry.user}@{entry.host}", entry.reason or MISSING]


def registry_history(ctx: ReportContext) -> ReportSection | None:
    """The promote / revert log (registry.jsonl), oldest first, and production now."""
    title = "Promote / revert history"
    try:
        log = history(ctx.campaign)
    except TunedeckError as exc:
        return ReportSection(
            id="registry", title=title, blocks=[ctx.note(title, f"registry.jsonl could not be read: {exc}")]
        )
    pointer = log.production
    if pointer is None and not log.entries:
        return None  # the report's opening line already says nothing is in production
    now = (
        f"Production: {pointer.run} ({pointer.artifact or 'no artifact recorded'})"
        if pointer
        else "Nothing in production"
    )
    since = f" since {pointer.promoted_at}" if pointer is not None and pointer.promoted_at else ""
    blocks: list[ReportBlock] = [text(f"{now}{since}" + (f" ({log.note})." if log.note else "."))]
    if log.entries:
        headers = ["#", "Time", "Action", "From → to", "Gate", "By", "Reason"]
        blocks.append(table(headers, (_entry_row(e) for e in log.entries)))
    return ReportSection(id="registry", title=title, blocks=blocks)
