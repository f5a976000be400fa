"""The anchor matrix: the gate's anchors (and rows pinned from the diff) down, the campaign's runs across."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from engine.api import AnchorMatrix

PASSED_ROW = "__passed__"


def cell_text(passed: bool | None) -> Text:
    """✓ passed, ✗ failed, · not evaluated."""
    if passed is None:
        return Text("·", style="dim", justify="center")
    return Text("✓" if passed else "✗", style="bold green" if passed else "bold red", justify="center")


def run_header(run: str, *, production: str | None, candidate: str | None, baseline: str | None) -> Text:
    """``★bd6.8d`` production, ``▸bd6.8d2`` the candidate, ``◂bd6`` a baseline other than production."""
    if run == candidate:
        return Text(f"▸{run}", style="bold reverse")
    if run == production:
        return Text(f"★{run}", style="bold")
    if run == baseline:
        return Text(f"◂{run}", style="bold")
    return Text(run)


def passed_counts(matrix: AnchorMatrix) -> list[Text]:
    """Per run, ``passed/rows`` — the seed's ``15/19`` (and how many were not evaluated)."""
    counts = []
    for col in range(len(matrix.runs)):
        column = [row[col] for row in matrix.cells]
        missing = column.count(None)
        text = f"{column.count(True)}/{len(column)}" + (f" ({missing}·)" if missing else "")
        counts.append(Text(text, style="bold", justify="center"))
    return counts


class AnchorMatrixTable(DataTable[Text]):
    """One row per anchor, one column per run, a last row of totals; scrolls sideways when narrow."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="cell", zebra_stripes=True, fixed_columns=1)
        self.matrix: AnchorMatrix | None = None

    def show(
        self, matrix: AnchorMatrix, *, production: str | None, candidate: str | None, baseline: str | None
    ) -> None:
        """Replace everything with ``matrix``; an anchor the candidate fails is named in red."""
        self.matrix = matrix
        own = matrix.runs.index(candidate) if candidate in matrix.runs else None
        rows: list[tuple[str, list[Text]]] = []
        for name, cells in zip(matrix.rows, matrix.cells, strict=True):
            failed = own is not None and cells[own] is False
            rows.append((name, [Text(name, style="red" if failed else ""), *map(cell_text, cells)]))
        if matrix.rows:
            rows.append((PASSED_ROW, [Text("passed", style="bold"), *passed_counts(matrix)]))
        marks = {"production": production, "candidate": candidate, "baseline": baseline}
        headers = [Text("row"), *(run_header(run, **marks) for run in matrix.runs)]
        self.clear(columns=True)
        # Widths measured here, not when the table is next idle (see diff_rows.column_widths).
        for i, (header, key) in enumerate(zip(headers, ["row", *matrix.runs], strict=True)):
            width = max([header.cell_len, *(cells[i].cell_len for _, cells in rows)])
            self.add_column(header, key=key, width=width)
        for key, row_cells in rows:
            self.add_row(*row_cells, key=key)

    def cell(self, row: str, run: str) -> bool | None:
        """The verdict shown for ``row`` and ``run`` (KeyError: not in the matrix)."""
        if self.matrix is None:
            raise KeyError(row)
        return self.matrix.cells[self.matrix.rows.index(row)][self.matrix.runs.index(run)]
