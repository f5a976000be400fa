"""The row-by-row sections: the anchor table, gate results, rows kept and lost, bench deltas.

Every figure is what ``tunedeck gate``, ``bench diff`` and ``bench show`` say for the same refs.
The baseline is the first run of the report's order with bench results (BD6 pass-1, say); rows
and deltas are given against it and against production. A row whose samples disagree is flaky
and marked ``~`` wherever it is named.
"""

from __future__ import annotations

from engine.api import AnchorMatrix, BenchDiff, GateResult, ReportSection, ReportTable
from engine.api.report import ReportBlock
from engine.report.context import ReportContext
from engine.report.tables import MISSING, fraction, listed, number, signed, table, text

MAX_REASON = 400  # characters of one gate reason in a cell (a lost-rows list can run to thousands)
MAX_ROWS = 12  # rows named in a cell of the counts tables; the per-row table names them all
FLAKY = " ~"


def _label(ctx: ReportContext, ref: str) -> str:
    return f"{ref} (production)" if ref == ctx.production_run else ref


def _flaky_tasks(ctx: ReportContext, ref: str) -> set[str]:
    return {row.task_id for row in ctx.bench.flaky if row.run == ref}


def anchor_table(ctx: ReportContext) -> ReportSection | None:
    """The gate's anchors down, runs across, as the seed's per-anchor tables have them."""
    matrix = ctx.bench.anchors
    if matrix is None:
        return None
    title = "Anchor table"
    if not isinstance(matrix, AnchorMatrix):
        return ReportSection(id="anchors", title=title, blocks=[ctx.note(title, matrix)])
    flaky = {run: _flaky_tasks(ctx, run) for run in matrix.runs}
    rows = []
    for anchor, cells in zip(matrix.rows, matrix.cells, strict=True):
        marks = [
            _verdict(cell) + (FLAKY if anchor in flaky[run] else "")
            for run, cell in zip(matrix.runs, cells, strict=True)
        ]
        rows.append([anchor, *marks])
    passed = [sum(1 for cells in matrix.cells if cells[col]) for col in range(len(matrix.runs))]
    rows.append(["**passed**", *(f"**{count}/{len(matrix.rows)}**" for count in passed)])
    blocks: list[ReportBlock] = [
        table(["Anchor", *(_label(ctx, run) for run in matrix.runs)], rows),
        text("✓ passed, ✗ failed (the first sample decides), — not evaluated; ~ the row's samples disagree (flaky)."),
    ]
    return ReportSection(id="anchors", title=title, blocks=blocks)


def _verdict(cell: bool | None) -> str:
    return MISSING if cell is None else "✓" if cell else "✗"


def _short(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def gate_results(ctx: ReportContext) -> ReportSection | None:
    """campaign.toml's [gate] applied to every ref with bench results; a failed gate is "rejected"."""
    title = "Gate results"
    if not ctx.bench.refs:
        return None  # nothing benched, nothing to gate
    if ctx.campaign.config.gate is None:
        return ReportSection(id="gate", title=title, blocks=[text("campaign.toml has no [gate]: nothing was gated.")])
    rows: list[list[str]] = []
    blocks: list[ReportBlock] = []
    for ref, result in ctx.bench.gates.items():
        if not isinstance(result, GateResult):
            blocks.append(ctx.note(title, f"{ref}: {result}"))
            continue
        verdict = "passed" if result.passed else "**rejected**"
        anchors = f"{result.anchors.passed}/{result.anchors.total}" if result.anchors.total else MISSING
        lost = (
            f"{len(result.lost)} (vs {result.production})"
            if result.production and ref != result.production
            else MISSING
        )
        reasons = "; ".join(_short(r) for r in result.reasons) or MISSING
        rows.append([_label(ctx, ref), verdict, anchors, lost, reasons, "; ".join(result.notes) or MISSING])
    headers = ["Run", "Verdict", "Anchors", "Lost vs production", "Failed rules", "Notes"]
    return ReportSection(id="gate", title=title, blocks=[table(headers, rows), *blocks])


def _rows(diff: BenchDiff, names: list[str]) -> list[str]:
    flaky = set(diff.flaky)
    return [name + (FLAKY if name in flaky else "") for name in names]


def _sides(ctx: ReportContext) -> list[tuple[str, str]]:
    """(against, its label) for the baseline and production, each once."""
    sides = []
    if ctx.bench.baseline is not None:
        sides.append((ctx.bench.baseline, "baseline"))
    if ctx.bench.production is not None:
        if sides and sides[0][0] == ctx.bench.production:
            sides[0] = (ctx.bench.production, "baseline and production")
        else:
            sides.append((ctx.bench.production, "production"))
    return sides


def _counts_table(ctx: ReportContext, against: str, label: str, notes: list[ReportBlock]) -> ReportTable | None:
    rows = []
    for ref in ctx.bench.refs:
        diff = ctx.bench.diffs.get((ref, against))
        if diff is None:
            continue
        if not isinstance(diff, BenchDiff):
            notes.append(ctx.note("Rows kept and lost", f"{ref} against {against}: {diff}"))
            continue
        counts = [str(len(getattr(diff, name))) for name in ("kept", "lost", "gained", "still_failing", "flaky")]
        p_value = f"{diff.p_value:.3g}" if diff.p_value is not None else MISSING
        rows.append(
            [
                _label(ctx, ref),
                *counts,
                p_value,
                *(listed(_rows(diff, names), MAX_ROWS) for names in (diff.lost, diff.gained)),
            ]
        )
    if not rows:
        return None
    headers = ["Run", "Kept", "Lost", "Gained", "Still failing", "Flaky", "McNemar p", "Lost rows", "Gained rows"]
    return table(headers, rows, title=f"Against {label} ({against})")


def _per_row_table(ctx: ReportContext, ref: str, against: str) -> ReportTable | None:
    """Every row of one diff by class, in full: the seed's "Per-row table"."""
    diff = ctx.bench.diffs.get((ref, against))
    if not isinstance(diff, BenchDiff):
        return None
    classes = [("KEPT", diff.kept), ("LOST", diff.lost), ("GAINED", diff.gained), ("STILL FAILING", diff.still_failing)]
    rows = [[name, str(len(names)), ", ".join(_rows(diff, names))] for name, names in classes if names]
    return table(["Class", "Rows", "Which"], rows, title=f"Per-row table: {ref} against {against}")


def kept_and_lost(ctx: ReportContext) -> ReportSection | None:
    """KEPT / LOST / GAINED / STILL FAILING of every ref against the baseline and production."""
    if not ctx.bench.diffs:
        return None
    blocks: list[ReportBlock] = []
    if ctx.production_run is not None and ctx.bench.production is None:
        blocks.append(
            text(f"Production ({ctx.production_run}) has no bench results: rows are compared with the baseline only.")
        )
    for against, label in _sides(ctx):
        found = _counts_table(ctx, against, label, blocks)
        if found is not None:
            blocks.append(found)
    latest = ctx.bench.refs[-1]
    for against, _ in _sides(ctx):
        per_row = _per_row_table(ctx, latest, against) if latest != against else None
        if per_row is not None:
            blocks.append(per_row)
    blocks.append(text("Rows are `bench:task_id`; ~ marks a flaky row (its samples disagree); McNemar p is exact."))
    return ReportSection(id="rows", title="Rows kept and lost", blocks=blocks)


def _delta(ctx: ReportContext, ref: str, bench: str, against: str | None) -> str:
    if against is None or ref == against:
        return MISSING
    if ctx.bench.is_judged(bench):
        mine, theirs = (ctx.bench.judged.get(r, {}).get(bench) for r in (ref, against))
        if mine is None or theirs is None or mine.overall is None or theirs.overall is None:
            return MISSING
        return signed(mine.overall - theirs.overall)
    diff = ctx.bench.diffs.get((ref, against))
    totals = diff.benches.get(bench) if isinstance(diff, BenchDiff) else None
    return signed(100 * totals.delta, 1, " pts") if totals is not None and totals.delta is not None else MISSING


def _score(ctx: ReportContext, ref: str, bench: str) -> str:
    judged = ctx.bench.judged.get(ref, {}).get(bench)
    if judged is not None:
        return number(judged.overall)
    rate = ctx.bench.rate(ref, bench)
    return fraction(rate.passed, rate.total) if rate is not None else MISSING


def bench_deltas(ctx: ReportContext) -> ReportSection | None:
    """Per ref and bench: its score, and the change against the baseline and production."""
    if not ctx.bench.refs:
        return None
    baseline, production = ctx.bench.baseline, ctx.bench.production
    rows = []
    for ref in ctx.bench.refs:
        for bench in ctx.bench.benches():
            if ctx.bench.rate(ref, bench) is None:
                continue
            row = [_label(ctx, ref), bench, _score(ctx, ref, bench), _delta(ctx, ref, bench, baseline)]
            rows.append(row + ([_delta(ctx, ref, bench, production)] if production is not None else []))
    headers = ["Run", "Bench", "Score", f"vs baseline ({baseline})"]
    headers += [f"vs production ({production})"] if production is not None else []
    legend = (
        "Score: passed/total (first sample), or a judged bench's mean overall; deltas in pass-rate points or score."
    )
    return ReportSection(id="deltas", title="Bench deltas", blocks=[table(headers, rows), text(legend)])
