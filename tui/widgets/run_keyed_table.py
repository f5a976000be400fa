"""A table with one row per run, keyed by the run's name, whose cursor stays on its run across refreshes."""

from __future__ import annotations

import contextlib
from typing import ClassVar

from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist


class RunKeyedTable(DataTable[str]):
    """Rows keyed by run name; subclasses name their ``COLUMNS`` and fill the rows."""

    COLUMNS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        for column in self.COLUMNS:
            self.add_column(column, key=column)

    @property
    def selected_run(self) -> str | None:
        """The run under the cursor."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def select(self, run: str | None) -> None:
        """Put the cursor on ``run`` when it is in the table."""
        if run is None:
            return
        with contextlib.suppress(RowDoesNotExist):
            self.move_cursor(row=self.get_row_index(run))
