"""The Runs screen (key 1): every run of the campaign, production marked; stop, resume, merge, open."""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Label

from tui.client import EndpointMissing, EngineCallError, EngineClient
from tui.disk_runs import runs_from_disk
from tui.messages import OpenRun
from tui.screens.confirm import ConfirmScreen
from tui.screens.prompt import PromptScreen
from tui.widgets.runs_table import RunsTable, status_cells, summary_cells
from tui.widgets.status_line import StatusLine

POLL_S = 1.0  # how often a pending refresh may start (one at a time)
SLOW_POLL_S = 15.0  # a refresh even without stream news (a state the files changed without a line)


class RunsScreen(Screen[None]):
    """A table of runs from ``/runs/summary`` (or ``/runs`` on an older engine)."""

    BINDINGS = [
        Binding("enter", "open_monitor", "Monitor run", priority=True),
        Binding("s", "stop_run", "Stop"),
        Binding("n", "new_run", "New run"),
        Binding("r", "resume_run", "Start/Resume"),
        Binding("m", "merge_run", "Merge"),
        Binding("ctrl+r", "refresh", "Refresh"),
    ]

    def __init__(self, client: EngineClient) -> None:
        super().__init__(id="runs")
        self.client = client
        self.refresh_due = True
        self.refreshing = False
        self.refreshed_at = 0.0
        self.fallback = False  # the engine has no /runs/summary: figures beyond the state are blank

    def compose(self) -> ComposeResult:
        yield StatusLine()
        yield RunsTable(id="runs-table")
        yield Label("", id="runs-note")
        yield Footer()

    def on_mount(self) -> None:
        # Polls never overlap (Dolphie): a timer only starts a refresh when none is running.
        self.set_interval(POLL_S, self._maybe_refresh)
        self.set_interval(SLOW_POLL_S, self.action_refresh)
        self._maybe_refresh()
        target = self.client.target
        if target.campaign is not None and target.socket is not None and target.transport is None:
            self.show_from_disk(target.campaign)  # a local engine that may take seconds to start

    @work(thread=True, exclusive=True, group="runs-disk")
    def show_from_disk(self, campaign: Path) -> None:
        """The runs as the files say, until the engine answers (a cold start takes seconds)."""
        rows = runs_from_disk(campaign)
        self.app.call_from_thread(self._show_disk_rows, rows)

    def _show_disk_rows(self, rows: list[tuple[str, tuple[str, ...]]]) -> None:
        if not self.table_ready or self.table.row_count or not rows:
            return  # the app is closing, or the engine answered first: its rows are fuller
        self.table.show(rows)
        self.query_one("#runs-note", Label).update(f"{len(rows)} run(s), read from the files while the engine starts")

    @property
    def table_ready(self) -> bool:
        """Whether the table is still there (not while the app closes)."""
        return self.is_mounted and bool(self.query(RunsTable))

    @property
    def table(self) -> RunsTable:
        """The runs table."""
        return self.query_one(RunsTable)

    def request_refresh(self, *, soon: bool = False) -> None:
        """Ask for a refresh; metric news (``soon``) waits a few seconds, events do not."""
        if not soon or time.monotonic() - self.refreshed_at > 3 * POLL_S:
            self.refresh_due = True

    def action_refresh(self) -> None:
        """Refresh the table now (or as soon as the running refresh ends)."""
        self.refresh_due = True
        self._maybe_refresh()

    def _maybe_refresh(self) -> None:
        if self.refresh_due and not self.refreshing:
            self.refresh_due, self.refreshing = False, True
            self.load_runs()

    @work(exclusive=True, group="runs-refresh")
    async def load_runs(self) -> None:
        """Fetch the rows and show them."""
        note = self.query_one("#runs-note", Label)
        try:
            rows = await self._rows()
        except EngineCallError as exc:
            note.update(f"runs not refreshed: {exc}")
            return
        finally:
            self.refreshing, self.refreshed_at = False, time.monotonic()
        if not self.table_ready:
            return  # the app quit while the engine answered: nothing left to fill
        self.table.show(rows)
        fallback = "  (this engine has no /runs/summary: loss, eval, pass rates and gate not shown)"
        note.update(f"{len(rows)} run(s){fallback if self.fallback else ''}" if rows else "no runs in this campaign")

    async def _rows(self) -> list[tuple[str, tuple[str, ...]]]:
        if not self.fallback:
            try:
                return [(row.run, summary_cells(row)) for row in await self.client.runs_summary()]
            except EndpointMissing:
                self.fallback = True
        return [(row.run, status_cells(row)) for row in await self.client.runs()]

    def _selected(self) -> str | None:
        run = self.table.selected_run
        if run is None:
            self.notify("no run selected", severity="warning")
        return run

    def action_open_monitor(self) -> None:
        """Open the Monitor on the selected run."""
        run = self._selected()
        if run is not None:
            self.post_message(OpenRun(run))

    def action_stop_run(self) -> None:
        """Stop the selected run (it checkpoints first), after a confirmation."""
        self._confirmed(f"Stop {self.table.selected_run}? It saves a checkpoint, then ends.", "stop")

    def action_resume_run(self) -> None:
        """Start the selected run if it never ran, else resume it from its newest checkpoint; asks first."""
        run = self.table.selected_run
        if run is not None and self.table.state_of(run) == "created":
            self._confirmed(f"Start {run}? It is queued and trains when the GPU is free.", "start")
        else:
            self._confirmed(f"Resume {run} from its newest checkpoint?", "resume")

    def action_new_run(self) -> None:
        """Queue a new run from a run.toml inside the campaign (placed at runs/<run>/run.toml)."""

        def answered(path: str | None) -> None:
            if path:
                self.queue_new_run(path)

        question = "New run: the run.toml to train (a path inside the campaign)"
        self.app.push_screen(PromptScreen(question, placeholder="runs/NAME/run.toml or drafts/next.toml"), answered)

    @work(exclusive=True, group="run-action")
    async def queue_new_run(self, path: str) -> None:
        """Hand the run.toml to the engine; its refusal (a bad field, a run that exists) as a notification."""
        try:
            status = await self.client.new_run(path)
            self.notify(f"{status.run}: {status.state}")
        except EngineCallError as exc:
            self.notify(str(exc), title=f"new run from {path}", severity="error", timeout=10)
        self.action_refresh()

    def action_merge_run(self) -> None:
        """Queue a merge of the selected run's adapter, after a confirmation."""
        self._confirmed(f"Merge {self.table.selected_run}'s adapter into its base (a queued job)?", "merge")

    def _confirmed(self, question: str, what: str) -> None:
        run = self._selected()
        if run is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.change_run(run, what)

        self.app.push_screen(ConfirmScreen(question), answered)

    @work(exclusive=True, group="run-action")
    async def change_run(self, run: str, what: str) -> None:
        """Send stop / start / resume / merge to the engine; the answer (or the refusal) as a notification."""
        try:
            if what == "stop":
                status = await self.client.stop(run)
                self.notify(f"{run}: {status.state}")
            elif what in ("start", "resume"):
                status = await (self.client.start(run) if what == "start" else self.client.resume(run))
                self.notify(f"{run}: {status.state}")
            else:
                job = await self.client.merge(run)
                self.notify(f"merge of {run}: {job.state} (job {job.id})")
        except EngineCallError as exc:
            self.notify(str(exc), title=f"{what} {run}", severity="error", timeout=8)
        self.action_refresh()
