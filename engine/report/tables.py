"""Markdown for the report: blocks built from plain values, cells formatted once, tables rendered.

Tables are GitHub-flavoured Markdown as the seed write-ups have them (``| a | b |`` with a
``|---|`` rule under the header). A cell never breaks its row: a ``|`` in a value is escaped and
a newline becomes a space. A figure nobody declared or measured is "—", never 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from engine.api import ReportSection, ReportTable, ReportText

MISSING = "—"


def text(line: str) -> ReportText:
    """A paragraph block."""
    return ReportText(kind="text", text=line)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], title: str | None = None) -> ReportTable:
    """A table block; a row of the wrong width is a bug of the caller, so it is refused here."""
    body = [[_flat(value) for value in row] for row in rows]
    for row in body:
        if len(row) != len(headers):
            raise ValueError(f"row of {len(row)} cells under {len(headers)} headers: {row}")
    return ReportTable(kind="table", title=title, headers=[_flat(h) for h in headers], rows=body)


def _flat(value: str) -> str:
    """One line, no runs of spaces; "—" for an empty value (an empty cell reads as a slip)."""
    return " ".join(value.split()) or MISSING


def cell(value: str) -> str:
    """A value made safe inside a table row: a ``|`` in it would end the cell."""
    return value.replace("|", "\\|")


def number(value: float | None, digits: int = 2) -> str:
    """A figure to ``digits`` decimals; "—" when there is none."""
    if value is None or not math.isfinite(value):
        return MISSING if value is None else str(value)
    return f"{value:.{digits}f}"


def signed(value: float | None, digits: int = 2, unit: str = "") -> str:
    """A difference with its sign (+0.16, -7.7 pts); "—" when there is none."""
    if value is None:
        return MISSING
    shown = f"{value:+.{digits}f}"
    if float(shown) == 0:
        shown = f"{0:.{digits}f}"  # no "-0.00" or "+0.00" for no change
    return shown + unit


def dollars(value: float | None) -> str:
    """$15.00, or "—" when not declared."""
    return MISSING if value is None else f"${value:,.2f}"


def fraction(passed: int, total: int) -> str:
    """12/13 (92.3%)."""
    rate = f" ({100 * passed / total:.1f}%)" if total else ""
    return f"{passed}/{total}{rate}"


def listed(names: Sequence[str], limit: int = 30) -> str:
    """Names joined by commas, at most ``limit`` of them, then how many more."""
    if not names:
        return MISSING
    more = f" … and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def render_table(block: ReportTable) -> str:
    """One table as Markdown lines (with its bold title above it when it has one)."""
    lines = [f"**{block.title}**", ""] if block.title else []
    lines.append("| " + " | ".join(cell(h) for h in block.headers) + " |")
    lines.append("|" + "---|" * len(block.headers))
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in block.rows]
    return "\n".join(lines)


def render_section(section: ReportSection) -> str:
    """A ``##`` heading and its blocks, a blank line between blocks."""
    parts = [f"## {section.title}"]
    for block in section.blocks:
        parts.append(block.text if isinstance(block, ReportText) else render_table(block))
    return "\n\n".join(parts)


def render_document(title: str, preamble: Sequence[str], sections: Sequence[ReportSection]) -> str:
    """The whole report: a ``#`` title, its opening lines, then every section."""
    parts = [f"# {title}", *preamble, *(render_section(s) for s in sections)]
    return "\n\n".join(parts) + "\n"
