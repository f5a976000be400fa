"""Judged benches of a diff: each weighted mean and delta with its 95% interval, coverage gaps, step counts.

The Foundry lessons as a panel: a delta whose interval holds 0 says "inside the noise", a
category only one side covers is named (it was left out of the delta, never counted as 0), and
a 300-step probe compared with a longer baseline is flagged with the ref that would match.
"""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine.api import DiffTotals, JudgedBenchDiff, JudgedDelta

NONE = Text("—", style="dim")
INSIDE = "inside the noise"
OUTSIDE = "outside the noise"
UNBOUNDED = 10_000  # columns: wider than any table


def mean_text(value: float | None) -> Text:
    """A judged mean, ``7.83`` (``—`` when that side has none)."""
    return NONE if value is None else Text(f"{value:.2f}")


def verdict_style(d: JudgedDelta) -> str:
    """Yellow inside the noise; outside it, green when the candidate rose and red when it fell."""
    if d.inside_noise is None or d.delta is None:
        return "dim"
    if d.inside_noise:
        return "yellow"
    return "bold green" if d.delta > 0 else "bold red" if d.delta < 0 else ""


def interval_text(d: JudgedDelta) -> Text:
    """``[-0.53, +0.52]``, the 95% bootstrap interval of the delta (``—`` under two prompts a side)."""
    if d.ci_low is None or d.ci_high is None:
        return NONE
    return Text(f"[{d.ci_low:+.2f}, {d.ci_high:+.2f}]", style="dim" if d.inside_noise else "")


def verdict_text(d: JudgedDelta) -> Text:
    """``inside the noise`` / ``outside the noise`` in words (``—`` when there is no interval)."""
    if d.inside_noise is None or d.delta is None:
        return NONE
    return Text(INSIDE if d.inside_noise else OUTSIDE, style=verdict_style(d))


def delta_cells(name: str, d: JudgedDelta) -> list[Text]:
    """One line of the table: name, baseline, candidate, signed delta, interval, verdict."""
    delta = NONE if d.delta is None else Text(f"{d.delta:+.2f}", style=verdict_style(d))
    return [Text(name), mean_text(d.baseline), mean_text(d.candidate), delta, interval_text(d), verdict_text(d)]


def judged_table(judged: dict[str, JudgedBenchDiff], *, short: bool) -> Table:
    """A line per bench (its shared categories) and one per category; ``short``: headers for 80 columns."""
    # One space between columns and none at the edges, like the bench totals above it.
    table = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False, header_style="bold", expand=False)
    table.add_column("judged", overflow="fold")
    heads = ("base", "cand") if short else ("baseline", "candidate")
    for name in (*heads, "delta"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("95% interval", no_wrap=True)
    table.add_column("", no_wrap=True)
    for bench, diff in sorted(judged.items()):
        table.add_row(*delta_cells(f"{bench} (shared categories)", diff))
        for category, delta in diff.categories.items():
            table.add_row(*delta_cells(f"  {category}", delta))
    return table


def step_note(totals: DiffTotals) -> str | None:
    """The engine's note on unequal step counts (None when the steps are the same or unknown)."""
    steps = totals.steps
    if steps.same is not False:
        return None
    return steps.note or (
        f"unequal step counts: {totals.candidate} at step {steps.candidate_step}, "
        f"{totals.baseline} at step {steps.baseline_step}"
    )


def notes(totals: DiffTotals) -> list[str]:
    """Each coverage warning of each judged bench, then the step note."""
    lines = [warning for _, diff in sorted(totals.judged.items()) for warning in diff.warnings]
    note = step_note(totals)
    return [*lines, note] if note else lines


def notes_table(lines: list[str]) -> Table:
    """One yellow ``!`` line per note; a wrapped note goes on under its text, not under the ``!``."""
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for line in lines:
        grid.add_row(Text("!", style="bold yellow"), Text(line, style="yellow"))
    return grid


def has_anything(totals: DiffTotals) -> bool:
    """Whether the panel has something to say: a judged bench or unequal step counts."""
    return bool(totals.judged) or step_note(totals) is not None


class JudgedDeltasView:
    """The table and notes, with short headers when the full ones would not fit the width."""

    def __init__(self, totals: DiffTotals) -> None:
        self.totals = totals

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        parts: list[Table] = []
        if self.totals.judged:
            table = judged_table(self.totals.judged, short=False)
            # Measured unclamped: Measurement.get caps the width it reports at the width it is given.
            natural = Measurement.get(console, options.update_width(UNBOUNDED), table).maximum
            if natural > options.max_width:
                table = judged_table(self.totals.judged, short=True)
            parts.append(table)
        lines = notes(self.totals)
        if lines:
            parts.append(notes_table(lines))
        yield Group(*parts)


class JudgedDeltas(Static):
    """The judged benches' deltas against their noise; hidden with no judged bench and no step mismatch."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.display = False

    def show(self, totals: DiffTotals) -> None:
        """A diff's judged benches and step check (``GET /bench/totals``); hidden when there are none."""
        self.display = has_anything(totals)
        self.update(JudgedDeltasView(totals) if self.display else "")

    def clear(self) -> None:
        """Nothing to show (no totals): hidden."""
        self.display = False
        self.update("")
