"""The runs the Registry screen can promote: name, state, gate verdict, production marked with ★."""

from __future__ import annotations

import contextlib

from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from engine.api import RunSummary

COLUMNS = ("run", "state", "gate")


class RegistryRunsTable(DataTable[str]):
    """A DataTable keyed by run name; the cursor stays on its run across refreshes."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.add_column(column, key=column)

    @property
    def selected_run(self) -> str | None:
        """The run under the cursor."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def show(self, rows: list[RunSummary], *, select: str | None = None) -> None:
        """Replace the rows; the cursor goes to ``select`` (or stays on the run it was on)."""
        keep = select or self.selected_run
        self.clear()
        for row in rows:
            name = f"★ {row.run}" if row.production else f"  {row.run}"
            self.add_row(name, row.state, row.gate or "—", key=row.run)
        self.select(keep)

    def select(self, run: str | None) -> None:
        """Put the cursor on ``run`` when it is in the table."""
        if run is None:
            return
        with contextlib.suppress(RowDoesNotExist):
            self.move_cursor(row=self.get_row_index(run))
