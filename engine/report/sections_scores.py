"""The score sections: the progression of runs (the seeds' "Score Progression") and judged category scores.

Judged benches (campaign.toml ``[judge]``) are scored by their mean weighted overall; a bench
``B-corrected`` beside ``B`` is its corrected version (the Foundry write-up's weighted-average
override). With one judged bench the progression has the seed's Raw and Corrected columns; a run
without bench rows there shows what its ``[ledger] reported`` says (``raw``, ``corrected``), marked †.
Pass/fail benches show passed/total per bench, the gate's anchors and its verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.api import GateResult, ReportSection, ReportTable
from engine.api.report import ReportBlock
from engine.bench.store import parse_ref
from engine.report.context import ReportContext
from engine.report.runs_order import ReportRun, ordered_refs
from engine.report.tables import MISSING, fraction, number, table, text

CORRECTED = "-corrected"
REPORTED = "†"


def judged_benches(ctx: ReportContext) -> list[str]:
    """Judged benches that are not a ``-corrected`` companion, sorted."""
    return [b for b in ctx.bench.benches() if ctx.bench.is_judged(b) and not b.endswith(CORRECTED)]


def _judged(ctx: ReportContext, ref: str, bench: str) -> float | None:
    entry = ctx.bench.judged.get(ref, {}).get(bench)
    return entry.overall if entry is not None else None


def _reported(run: ReportRun | None, ref: str, key: str) -> float | None:
    """``[ledger] reported.<key>`` of a run (never of a checkpoint's ref: the ledger speaks of the run)."""
    if run is None or run.config is None or run.config.ledger is None or "@" in ref:
        return None
    return run.config.ledger.reported.get(key)


def _score(ctx: ReportContext, ref: str, bench: str, fallback: str | None) -> tuple[str, bool]:
    """The judged overall to 2 decimals, else the ledger's figure marked †; whether it was the ledger's."""
    value = _judged(ctx, ref, bench)
    if value is not None:
        return number(value), False
    reported = _reported(ctx.run(parse_ref(ref).run), ref, fallback) if fallback else None
    return (number(reported) + REPORTED, True) if reported is not None else (MISSING, False)


def _gate_cells(gate: GateResult | str | None) -> list[str]:
    if not isinstance(gate, GateResult):
        return [MISSING, MISSING]
    anchors = f"{gate.anchors.passed}/{gate.anchors.total}" if gate.anchors.total else MISSING
    return [anchors, "passed" if gate.passed else "**rejected**"]


def _describe(ctx: ReportContext, ref: str) -> list[str]:
    """Run (production marked), base, dataset and pairs of a ref's run."""
    run = ctx.run(parse_ref(ref).run)
    config = run.config if run is not None else None
    ledger = config.ledger if config is not None else None
    base = (config.base if config is not None else None) or ctx.campaign.config.base
    dataset = (ledger.dataset if ledger is not None else None) or (config.dataset if config is not None else None)
    pairs = f"{ledger.pairs:,}" if ledger is not None and ledger.pairs is not None else MISSING
    label = f"{ref} (production)" if ref == ctx.production_run else ref
    return [label, base or MISSING, dataset or MISSING, pairs]


def _refs(ctx: ReportContext) -> list[str]:
    """Every run, and every bench ref, in the report's order."""
    return ordered_refs(ctx.runs, [run.name for run in ctx.runs] + ctx.bench.refs)


@dataclass(frozen=True)
class Column:
    """A score column: a pass/fail bench's passed/total, or a judged bench's overall (``ledger``: its fallback)."""

    header: str
    bench: str
    judged: bool
    ledger: str | None = None


def _score_columns(ctx: ReportContext, judged: list[str]) -> list[Column]:
    columns = [Column(b, b, False) for b in ctx.bench.benches() if not ctx.bench.is_judged(b)]
    single = len(judged) == 1
    for bench in judged:
        columns.append(Column("Raw" if single else bench, bench, True, "raw" if single else None))
        reported = single and any(_reported(run, run.name, "corrected") is not None for run in ctx.runs)
        if reported or bench + CORRECTED in ctx.bench.benches():
            header = "Corrected" if single else f"{bench} corrected"
            columns.append(Column(header, bench + CORRECTED, True, "corrected" if single else None))
    return columns


def _score_cell(ctx: ReportContext, ref: str, column: Column) -> tuple[str, bool]:
    if column.judged:
        return _score(ctx, ref, column.bench, column.ledger)
    rate = ctx.bench.rate(ref, column.bench)
    return (fraction(rate.passed, rate.total) if rate is not None else MISSING), False


def progression(ctx: ReportContext) -> ReportSection | None:
    """Score progression: one row per run and bench ref, in order."""
    if not ctx.runs and not ctx.bench.refs:
        return None
    judged = judged_benches(ctx)
    columns = _score_columns(ctx, judged)
    gated = ctx.campaign.config.gate is not None
    rows, marked = [], False
    for ref in _refs(ctx):
        row = _describe(ctx, ref)
        for column in columns:
            shown, from_ledger = _score_cell(ctx, ref, column)
            row.append(shown)
            marked |= from_ledger
        if gated:
            row += _gate_cells(ctx.bench.gates.get(ref))
        run = ctx.run(parse_ref(ref).run)
        row.append(str(run.date) if run is not None and run.date is not None else MISSING)
        rows.append(row)
    gate_headers = ["Anchors", "Gate"] if gated else []
    headers = ["Run", "Base", "Dataset", "Pairs", *(c.header for c in columns), *gate_headers, "Date"]
    blocks: list[ReportBlock] = [_progression_table(headers, rows)]
    blocks += _progression_notes(ctx, columns, marked)
    return ReportSection(id="progression", title="Score progression", blocks=blocks)


def _progression_table(headers: list[str], rows: list[list[str]]) -> ReportTable:
    """The table, without the Pairs column when no run declares pairs."""
    if all(row[3] == MISSING for row in rows):
        headers = headers[:3] + headers[4:]
        rows = [row[:3] + row[4:] for row in rows]
    return table(headers, rows)


def _progression_notes(ctx: ReportContext, columns: list[Column], marked: bool) -> list[ReportBlock]:
    notes: list[ReportBlock] = []
    raw = next((c for c in columns if c.header == "Raw"), None)
    if raw is not None:
        legend = f"Raw: the mean weighted overall (campaign.toml [judge] weights) of judged bench `{raw.bench}`"
        if any(c.header == "Corrected" for c in columns):
            legend += f"; Corrected: the same of bench `{raw.bench}{CORRECTED}`"
        notes.append(text(legend + "."))
    if marked:
        notes.append(text(f"{REPORTED} as the run's `[ledger] reported` states it: no bench rows behind the figure."))
    if ctx.bench.problem:
        notes.append(ctx.note("Score progression", ctx.bench.problem))
    if ctx.production_problem:
        notes.append(ctx.note("Score progression", ctx.production_problem))
    notes += [ctx.note("Score progression", f"{run.name}: {run.problem}") for run in ctx.runs if run.problem]
    return notes


def abbreviations(categories: list[str]) -> dict[str, str]:
    """Short column names as the seeds write them (anachronism_trap -> AT); the full names if two collide."""
    short = {
        name: "".join(word[0] for word in name.replace("-", "_").split("_") if word).upper() for name in categories
    }
    short = {name: (abbrev if len(abbrev) > 1 else name[:3].upper()) for name, abbrev in short.items()}
    if len(set(short.values())) < len(short) or any(not abbrev for abbrev in short.values()):
        return {name: name for name in categories}
    return short


def _category_table(ctx: ReportContext, bench: str, short: dict[str, str], title: str) -> ReportTable:
    refs = [ref for ref in ctx.bench.refs if bench in ctx.bench.judged.get(ref, {})]
    categories = sorted({c for ref in refs for c in ctx.bench.judged[ref][bench].categories})
    rows = []
    for ref in refs:
        scores = ctx.bench.judged[ref][bench]
        rate = ctx.bench.rate(ref, bench)
        failures = str(rate.total - rate.passed) if rate is not None else MISSING
        cells = [number(scores.categories[c].overall) if c in scores.categories else MISSING for c in categories]
        rows.append([ref, number(scores.overall), *cells, failures])
    return table(["Run", "Overall", *(short[c] for c in categories), "Crit. Failures"], rows, title=title)


def categories(ctx: ReportContext) -> ReportSection | None:
    """Judged benches: mean overall per prompt category, one table per bench (raw, then corrected)."""
    judged = [b for b in ctx.bench.benches() if ctx.bench.is_judged(b)]
    if not judged:
        return None
    names = sorted({c for benches in ctx.bench.judged.values() for entry in benches.values() for c in entry.categories})
    short = abbreviations(names)
    blocks: list[ReportBlock] = []
    if any(short[name] != name for name in names):
        blocks.append(text(", ".join(f"{short[name]}={name}" for name in names)))
    for bench in judged:
        kind = "corrected" if bench.endswith(CORRECTED) else "raw" if bench + CORRECTED in judged else None
        title = f"Category scores ({kind}): {bench}" if kind else f"Category scores: {bench}"
        blocks.append(_category_table(ctx, bench, short, title))
    blocks.append(text("Crit. Failures: rows the judge did not pass (`passed = false`), first sample of each prompt."))
    return ReportSection(id="categories", title="Category scores", blocks=blocks)
