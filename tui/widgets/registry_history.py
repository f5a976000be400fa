"""The registry's history as a table, newest first: time, action, from → to, gate, forced, reason, user@host."""

from __future__ import annotations

from textual.widgets import DataTable

from engine.api import RegistryEntry

COLUMNS = ("#", "time", "action", "from → to", "gate", "forced", "reason", "by")
REASON_WIDTH = 60


def entry_cells(entry: RegistryEntry) -> tuple[str, ...]:
    """The table's cells for one line of registry.jsonl."""
    action = entry.action if entry.undoes is None else f"revert #{entry.undoes}"
    gate = "—" if entry.gate is None else entry.gate.verdict
    forced = "FORCED" if entry.gate is not None and entry.gate.forced else ""
    reason = " ".join((entry.reason or "").split())  # one line, whatever was typed
    if len(reason) > REASON_WIDTH:
        reason = reason[: REASON_WIDTH - 1] + "…"
    change = f"{entry.from_run or '—'} → {entry.to_run or '—'}"
    return (str(entry.seq), entry.time, action, change, gate, forced, reason, f"{entry.user}@{entry.host}")


class RegistryHistoryTable(DataTable[str]):
    """One row per registry line, keyed by its seq, the newest on top."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.add_column(column, key=column)

    def show(self, entries: list[RegistryEntry]) -> None:
        """Replace the rows with ``entries`` (oldest first, as the log holds them), newest on top."""
        self.clear()
        for entry in reversed(entries):
            self.add_row(*entry_cells(entry), key=str(entry.seq))
