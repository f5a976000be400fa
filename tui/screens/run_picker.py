"""Pick the runs to overlay on the Monitor's charts (`o`): a checklist of the campaign's other runs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, SelectionList


class RunPicker(ModalScreen[list[str] | None]):
    """Space ticks a run, Enter overlays the ticked ones, Escape changes nothing."""

    BINDINGS = [
        Binding("enter", "done", "Overlay", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, main: str, runs: list[str], chosen: list[str]) -> None:
        super().__init__()
        self.main, self.runs, self.chosen = main, runs, chosen

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-dialog"):
            yield Label(f"Overlay on {self.main}'s charts (space ticks, Enter overlays, Escape cancels):")
            yield SelectionList[str](*[(run, run, run in self.chosen) for run in self.runs], id="picker-runs")

    def action_done(self) -> None:
        """Overlay the ticked runs, in the campaign's order."""
        ticked = set(self.query_one(SelectionList).selected)
        self.dismiss([run for run in self.runs if run in ticked])

    def action_cancel(self) -> None:
        """Leave the overlays as they were."""
        self.dismiss(None)
