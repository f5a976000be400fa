"""The runs the Registry screen can promote: name, state, gate verdict, production marked with ★."""

from __future__ import annotations

from engine.api import RunSummary
from tui.widgets.run_keyed_table import RunKeyedTable


class RegistryRunsTable(RunKeyedTable):
    """Name, state and gate verdict of each run."""

    COLUMNS = ("run", "state", "gate")

    def show(self, rows: list[RunSummary], *, select: str | None = None) -> None:
        """Replace the rows; the cursor goes to ``select`` (or stays on the run it was on)."""
        keep = select or self.selected_run
        self.clear()
        for row in rows:
            name = f"★ {row.run}" if row.production else f"  {row.run}"
            self.add_row(name, row.state, row.gate or "—", key=row.run)
        self.select(keep)
