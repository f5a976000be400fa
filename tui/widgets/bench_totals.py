"""Bench totals of a diff: each bench's pass rates side by side, the delta, the rows per class, the p-value."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine.api import DiffBenchTotals, DiffTotals


def p_value_words(p_value: float | None, lost: int, gained: int) -> str:
    """What an exact McNemar p-value on lost vs gained rows says, in words a person acts on."""
    if p_value is None:
        return "no shared rows: no test"
    if lost == gained == 0:
        return f"p={p_value:.2g}: no row changed verdict"
    if p_value < 0.01:
        meaning = "very unlikely to be noise"
    elif p_value < 0.05:
        meaning = "unlikely to be noise"
    elif p_value < 0.2:
        meaning = "weak evidence: could be noise"
    else:
        meaning = "could well be noise"
    return f"p={p_value:.2g}: {meaning} ({lost} lost vs {gained} gained, exact McNemar)"


def rate_text(passed: int, total: int) -> str:
    """``12/13 92.3%`` (``—`` for a bench a side did not run)."""
    return f"{passed}/{total} {passed / total:.1%}" if total else "—"


def delta_text(delta: float | None) -> Text:
    """The pass-rate delta in points, signed, red when it fell and green when it rose."""
    if delta is None:
        return Text("—", style="dim")
    points = delta * 100
    style = "bold red" if points < -0.05 else "bold green" if points > 0.05 else ""
    return Text(f"{points:+.1f} pts", style=style)


def _count(value: int, style: str) -> Text:
    return Text(str(value), style=style if value else "dim")


def totals_table(benches: dict[str, DiffBenchTotals]) -> Table:
    """One line per bench: baseline, candidate, delta, kept, lost, gained, still failing, flaky."""
    # One space between columns and none at the edges: the nine columns fit 80 terminal columns.
    table = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False, header_style="bold", expand=False)
    for name in ("bench", "baseline", "candidate", "delta"):
        table.add_column(name, no_wrap=True)
    for name in ("kept", "lost", "gained", "failing", "flaky"):
        table.add_column(name, justify="right", no_wrap=True)
    for bench, t in sorted(benches.items()):
        table.add_row(
            bench,
            rate_text(t.baseline_passed, t.baseline_total),
            rate_text(t.candidate_passed, t.candidate_total),
            delta_text(t.delta),
            _count(t.kept, "green"),
            _count(t.lost, "bold red"),
            _count(t.gained, "bold green"),
            _count(t.still_failing, "red"),
            _count(t.flaky, "yellow"),
        )
    return table


class BenchTotals(Static):
    """The totals table and the McNemar line, or why there are none."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("bench totals: asking the engine…", id=id)

    def show(self, totals: DiffTotals) -> None:
        """A diff's totals (``GET /bench/totals``)."""
        lost = sum(t.lost for t in totals.benches.values())
        gained = sum(t.gained for t in totals.benches.values())
        flaky = sum(t.flaky for t in totals.benches.values())
        words = Text(p_value_words(totals.p_value, lost, gained))
        if flaky:
            words.append(f"   ~ {flaky} flaky row(s): samples disagree (decoder noise?)", style="yellow")
        self.update(Group(totals_table(totals.benches), words))

    def show_message(self, text: str) -> None:
        """A line in place of the totals (no production, no bench results, engine gone)."""
        self.update(Text(text, style="italic"))
