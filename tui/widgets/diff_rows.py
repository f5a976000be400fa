"""One page of a diff's rows: class, bench, task, both verdicts, noise, the candidate's error."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from engine.api import BenchRow

COLUMNS = ("class", "bench", "task", "base", "cand", "noise", "error")
ERROR_CHARS = 80
CLASS_LABELS = {
    "kept": ("KEPT", "green"),
    "lost": ("LOST", "bold red"),
    "gained": ("GAINED", "bold green"),
    "still_failing": ("STILL FAILING", "red"),
    "only_candidate": ("ONLY CANDIDATE", "dim"),
    "only_baseline": ("ONLY BASELINE", "dim"),
}


def verdict_text(passed: bool | None) -> Text:
    """✓, ✗, or · for a side that never evaluated the row."""
    if passed is None:
        return Text("·", style="dim")
    return Text("✓", style="green") if passed else Text("✗", style="red")


def row_cells(row: BenchRow) -> tuple[Text, ...]:
    """The cells of one diff row."""
    label, style = CLASS_LABELS[row.klass]
    error = row.error or ""
    if len(error) > ERROR_CHARS:
        error = error[: ERROR_CHARS - 1] + "…"
    return (
        Text(label, style=style),
        Text(row.bench),
        Text(row.task_id, style="bold" if row.klass in ("lost", "gained") else ""),
        verdict_text(row.baseline_passed),
        verdict_text(row.candidate_passed),
        Text("~ flaky", style="yellow") if row.flaky else Text(""),
        Text(error, style="dim"),
    )


def column_widths(headers: tuple[str, ...], rows: list[tuple[Text, ...]]) -> list[int]:
    """Each column as wide as its widest cell, measured here: a DataTable measures new rows only
    when idle, and a page painted before that showed its columns cut to the headers' widths."""
    return [max([len(header), *(row[i].cell_len for row in rows)]) for i, header in enumerate(headers)]


class DiffRows(DataTable[Text]):
    """A DataTable that holds one page of ``GET /bench/rows``, never more."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.show([])

    def show(self, rows: list[BenchRow]) -> None:
        """Replace the rows with a page (the cursor goes back to its top)."""
        cells = [row_cells(row) for row in rows]
        self.clear(columns=True)
        for column, width in zip(COLUMNS, column_widths(COLUMNS, cells), strict=True):
            self.add_column(column, key=column, width=width)
        for row, row_cells_ in zip(rows, cells, strict=True):
            self.add_row(*row_cells_, key=f"{row.bench}:{row.task_id}")

    @property
    def selected_row(self) -> str | None:
        """``bench:task_id`` of the row under the cursor."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
