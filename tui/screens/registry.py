"""The Registry screen (key 5): production, the promote / revert history, and the runs to promote.

``P`` promotes the run under the cursor and ``R`` reverts, each behind a confirmation built from
the engine's dry run (what production becomes, the gate's answer); a failing gate needs a typed
reason to force. Answers and refusals become notifications, then the screen asks again.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Label

from engine.api import ProductionPointer, RegistryResult, RunSummary
from tui.client import EndpointMissing, EngineCallError, EngineClient
from tui.screens.registry_confirm import RegistryConfirmScreen
from tui.widgets.registry_history import RegistryHistoryTable
from tui.widgets.registry_production import ProductionPanel
from tui.widgets.registry_runs import RegistryRunsTable
from tui.widgets.status_line import StatusLine


class RegistryScreen(Screen[None]):
    """Production, its history (newest first) and the campaign's runs, from ``/registry`` and ``/runs/summary``."""

    BINDINGS = [
        Binding("P", "promote", "Promote", key_display="P"),
        Binding("R", "revert", "Revert", key_display="R"),
        Binding("ctrl+r", "refresh", "Refresh"),
    ]

    class ProductionChanged(Message):
        """A promote or revert went through: the Runs table's ★ has moved."""

    def __init__(self, client: EngineClient) -> None:
        super().__init__(id="registry")
        self.client = client
        self.preferred: str | None = None  # the run to put the cursor on at the next load
        self.production: ProductionPointer | None = None

    def compose(self) -> ComposeResult:
        yield StatusLine()
        yield ProductionPanel(id="registry-production")
        with Horizontal(id="registry-body"):
            with Vertical(id="registry-left"):
                yield Label("runs (P promotes the one selected)", classes="registry-title")
                yield RegistryRunsTable(id="registry-runs")
            with Vertical(id="registry-right"):
                yield Label("history, newest first (R reverts the latest promote)", classes="registry-title")
                yield RegistryHistoryTable(id="registry-history")
        yield Label("", id="registry-note")
        yield Footer()

    def on_screen_resume(self) -> None:
        self.load()

    @property
    def runs_table(self) -> RegistryRunsTable:
        """The runs to pick from."""
        return self.query_one(RegistryRunsTable)

    @property
    def history_table(self) -> RegistryHistoryTable:
        """The history."""
        return self.query_one(RegistryHistoryTable)

    def show_run(self, run: str | None) -> None:
        """Select ``run`` (the app's selected run) now, or when the runs arrive."""
        self.preferred = run
        if self.is_mounted:
            self.runs_table.select(run)

    def action_refresh(self) -> None:
        """Ask the engine again."""
        self.load()

    @work(exclusive=True, group="registry-refresh")
    async def load(self) -> None:
        """Production, the history and the runs."""
        note = self.query_one("#registry-note", Label)
        try:
            history = await self.client.registry_history()
            runs = await self._runs()
        except EngineCallError as exc:
            note.update(f"registry not refreshed: {exc}")
            return
        self.production = history.production
        self.query_one(ProductionPanel).show(history.production, history.note, history.in_sync)
        self.history_table.show(history.entries)
        self.runs_table.show(runs, select=self.preferred)
        self.preferred = None
        undo = "R reverts the latest promote" if history.can_revert else "nothing to revert"
        note.update(f"{len(history.entries)} change(s) in registry.jsonl; {undo}")

    async def _runs(self) -> list[RunSummary]:
        try:
            return await self.client.runs_summary()
        except EndpointMissing:  # an older engine: names and states only
            statuses = await self.client.runs()
            production = self.production.run if self.production else None
            return [_bare_summary(s.run, s.state, s.step, production) for s in statuses]

    # -- promote / revert ------------------------------------------------------------------
    def action_promote(self) -> None:
        """Promote the selected run, after a confirmation that shows the gate."""
        run = self.runs_table.selected_run
        if run is None:
            self.notify("no run selected", severity="warning")
            return
        self.promote(run)

    def action_revert(self) -> None:
        """Revert to the production before the latest promote, after a confirmation."""
        self.revert()

    @work(exclusive=True, group="registry-action")
    async def promote(self, run: str) -> None:
        """Dry run, confirmation (with the gate), then the promote itself."""
        try:
            preview = await self.client.promote(run, dry_run=True)
            if preview.refused not in (None, "gate"):
                self._report(preview)  # no artifact, already production, busy: nothing to confirm
                return
            reason = await self.app.push_screen_wait(RegistryConfirmScreen(preview, current=self.production, run=run))
            if reason is None:
                self.notify("promote cancelled: nothing changed")
                return
            forced = preview.refused == "gate"
            self._report(await self.client.promote(run, reason=reason or None, force=forced))
        except EngineCallError as exc:
            self.notify(str(exc), title=f"promote {run}", severity="error", timeout=10)
        self.load()

    @work(exclusive=True, group="registry-action")
    async def revert(self) -> None:
        """Dry run, confirmation (what production becomes), then the revert."""
        try:
            preview = await self.client.revert(dry_run=True)
            if preview.refused is not None:
                self._report(preview)
                return
            reason = await self.app.push_screen_wait(RegistryConfirmScreen(preview, current=self.production))
            if reason is None:
                self.notify("revert cancelled: nothing changed")
                return
            self._report(await self.client.revert(reason=reason or None))
        except EngineCallError as exc:
            self.notify(str(exc), title="revert", severity="error", timeout=10)
        self.load()

    def _report(self, result: RegistryResult) -> None:
        for warning in result.warnings:
            self.notify(warning, severity="warning", timeout=10)
        if result.refused is not None:
            self.notify(result.message, title=f"{result.action} refused", severity="error", timeout=12)
            return
        self.notify(result.message, title=result.action)
        if result.done:
            self.post_message(self.ProductionChanged())


def _bare_summary(run: str, state: str, step: int, production: str | None) -> RunSummary:
    """A runs-summary row with only what ``/runs`` gives (older engines)."""
    return RunSummary.model_validate(
        {
            "run": run, "state": state, "step": step, "max_steps": None, "pid": None, "reason": None,
            "last_loss": None, "best_eval": None, "pass_rates": {}, "gate": None, "alerts": 0,
            "production": run == production, "job": None,
        }
    )  # fmt: skip
