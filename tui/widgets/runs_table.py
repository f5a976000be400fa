"""The Runs table: one row per run, production marked with ★; the cursor stays on its run across refreshes."""

from __future__ import annotations

from textual.widgets.data_table import CellDoesNotExist

from engine.api import RunStatus, RunSummary
from tui.widgets.run_keyed_table import RunKeyedTable

COLUMNS = ("run", "state", "step", "last loss", "best eval", "pass rates", "gate", "alerts", "job")


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def summary_cells(row: RunSummary) -> tuple[str, ...]:
    """The table's cells for one run."""
    name = f"★ {row.run}" if row.production else f"  {row.run}"
    step = f"{row.step}/{row.max_steps}" if row.max_steps else str(row.step)
    best = f"{row.best_eval.metric} {row.best_eval.value:.4g} @{row.best_eval.step}" if row.best_eval else "—"
    rates = " ".join(f"{bench} {rate:.0%}" for bench, rate in sorted(row.pass_rates.items())) or "—"
    return (name, row.state, step, _number(row.last_loss), best, rates, row.gate or "—", str(row.alerts), row.job or "")


def status_cells(row: RunStatus) -> tuple[str, ...]:
    """Cells from the plain ``/runs`` answer of an older engine (no summary figures)."""
    step = f"{row.step}/{row.max_steps}" if row.max_steps else str(row.step)
    return (f"  {row.run}", row.state, step, "—", "—", "—", "—", "—", "")


class RunsTable(RunKeyedTable):
    """Every figure of the Runs table (COLUMNS)."""

    COLUMNS = COLUMNS

    def state_of(self, run: str) -> str | None:
        """The state shown for ``run`` (None when it is not in the table)."""
        try:
            return str(self.get_cell(run, "state"))
        except CellDoesNotExist:
            return None

    def show(self, rows: list[tuple[str, tuple[str, ...]]]) -> None:
        """Replace the rows (``(run, cells)``), keeping the cursor on the run it was on."""
        keep = self.selected_run
        self.clear()
        for run, cells in rows:
            self.add_row(*cells, key=run)
        self.select(keep)
