"""The tunedeck TUI: screens switched with single keys, one engine client for the app's life.

Compose, bindings, the client's lifecycle and screen switching live here; each screen owns its
own data and widgets (``tui/screens/``). Quitting closes the connection only: the engine and its
runs go on.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen

from tui.client import EngineCallError, EngineClient, EngineTarget
from tui.messages import AlertRaised, EngineConnection, MetricPoints, OpenRun, RunEvent, SystemSample
from tui.screens.compare import CompareScreen
from tui.screens.decide import DecideScreen
from tui.screens.monitor import MonitorScreen
from tui.screens.registry import RegistryScreen
from tui.screens.runs import RunsScreen
from tui.widgets.status_line import StatusLine


class TunedeckApp(App[None]):
    """Runs (1) and Monitor (2) of one campaign's engine."""

    CSS_PATH = "app.tcss"
    TITLE = "tunedeck"
    BINDINGS = [
        Binding("1", "show_runs", "Runs"),
        Binding("2", "show_monitor", "Monitor"),
        Binding("3", "show_compare", "Compare"),
        Binding("4", "show_decide", "Decide"),
        Binding("5", "show_registry", "Registry"),
        Binding("question_mark", "keys", "Keys", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, target: EngineTarget, *, stream: bool = True, open_run: str | None = None) -> None:
        super().__init__()
        self.open_run = open_run  # `--run RUN`: start on the Monitor of that run (the demo does)
        self.client = EngineClient(target)
        self.stream = stream  # tests under ASGITransport read the stream once (client.follow = False)
        self.runs_screen = RunsScreen(self.client)
        self.monitor_screen = MonitorScreen(self.client)
        # Every screen on a number key, by name; each shows the engine's state in its StatusLine.
        self.pages: dict[str, Screen[None]] = {"runs": self.runs_screen, "monitor": self.monitor_screen}
        self.compare_screen = CompareScreen(self.client)
        self.pages["compare"] = self.compare_screen
        self.decide_screen = DecideScreen(self.client)
        self.pages["decide"] = self.decide_screen
        self.registry_screen = RegistryScreen(self.client)
        self.pages["registry"] = self.registry_screen
        self.connection = EngineConnection(False, "connecting")

    def on_mount(self) -> None:
        for name, screen in self.pages.items():
            self.install_screen(screen, name)
        self.push_screen("runs")
        self.connect()
        if self.open_run is not None:
            self.call_after_refresh(self.action_monitor_run, self.open_run)

    async def on_unmount(self) -> None:
        await self.client.aclose()

    @work(exclusive=True, group="engine-stream")
    async def connect(self) -> None:
        """Find (or start) the engine, then follow the campaign stream for the app's life."""
        try:
            note = await self.client.ensure_engine()
            self.post_message(EngineConnection(True, note or ""))
        except EngineCallError as exc:
            self.post_message(EngineConnection(False, str(exc), retry_in=1.0))
        if self.stream:
            await self.client.consume_stream(self.post_message)

    # -- screens ---------------------------------------------------------------------------
    def _switch(self, screen: Screen[None]) -> None:
        if isinstance(self.screen, ModalScreen) or self.screen is screen:
            return  # a question is open: answer it first
        self.switch_screen(screen)
        self.call_after_refresh(self._show_connection)  # after a first switch has composed the screen

    def action_show_runs(self) -> None:
        """The Runs screen."""
        self._switch(self.runs_screen)

    def action_show_monitor(self) -> None:
        """The Monitor screen, on the run last opened (or the one selected on Runs)."""
        if self.monitor_screen.run_name is None and self.runs_screen.is_mounted:
            run = self.runs_screen.table.selected_run
            if run is not None:
                self.monitor_screen.show_run(run)
        self._switch(self.monitor_screen)

    def action_show_compare(self) -> None:
        """The Compare screen: the selected run against production (or the baseline picked there)."""
        self.compare_screen.show_candidate(self.selected_run())
        self._switch(self.compare_screen)

    def action_show_decide(self) -> None:
        """The Decide screen: the decision tree walked on the selected run."""
        run = self.selected_run()
        if run is None:
            self.notify("no run selected: pick one on Runs (1)", severity="warning")
            return
        self.decide_screen.show_run(run)
        self._switch(self.decide_screen)

    def action_show_registry(self) -> None:
        """The Registry screen: production, its history, promote (P) and revert (R) of the selected run."""
        self.registry_screen.show_run(self.selected_run())
        self._switch(self.registry_screen)

    @on(RegistryScreen.ProductionChanged)
    def _production_changed(self, message: RegistryScreen.ProductionChanged) -> None:
        self.runs_screen.request_refresh()  # its ★ moves

    def selected_run(self) -> str | None:
        """The run the screens 2-5 act on: the one selected on Runs, else the one last monitored."""
        if self.runs_screen.is_mounted and self.runs_screen.table.selected_run is not None:
            return self.runs_screen.table.selected_run
        return self.monitor_screen.run_name

    def action_monitor_run(self, run: str) -> None:
        """Open the Monitor on ``run``."""
        self._switch(self.monitor_screen)
        self.monitor_screen.show_run(run)

    @on(OpenRun)
    def _open_run(self, message: OpenRun) -> None:
        self.action_monitor_run(message.run)

    def action_keys(self) -> None:
        """Show or hide the keys panel."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette: Textual's commands, then every key binding of the app and the current screen."""
        yield from super().get_system_commands(screen)
        for owner in (self, screen):
            for binding in owner.BINDINGS:
                if isinstance(binding, Binding) and binding.description and binding.action != "quit":
                    key = binding.key_display or binding.key.split(",")[0]
                    yield SystemCommand(binding.description, f"key {key}", partial(owner.run_action, binding.action))

    # -- what the stream brings --------------------------------------------------------------
    @on(EngineConnection)
    def _connection_changed(self, message: EngineConnection) -> None:
        was = self.connection.connected
        self.connection = message
        if message.connected and message.detail:
            self.notify(message.detail)
        if message.connected and not was:
            self.runs_screen.request_refresh()
        self._show_connection()

    def _show_connection(self) -> None:
        state = self.connection
        where = self.client.target.describe()
        for screen in self.pages.values():
            try:
                line = screen.query_one(StatusLine)
            except NoMatches:
                continue  # not composed yet: it reads the state when it is
            line.show(state.connected, "" if state.connected else state.detail, state.retry_in, where)

    @on(MetricPoints)
    def _metric_points(self, message: MetricPoints) -> None:
        self.monitor_screen.feed_metrics(message.run, message.records)
        self.runs_screen.request_refresh(soon=True)

    @on(RunEvent)
    def _run_event(self, message: RunEvent) -> None:
        self.monitor_screen.feed_event(message.run, message.record)
        self.compare_screen.feed_event(message.run, message.record)
        self.runs_screen.request_refresh()

    @on(AlertRaised)
    def _alert(self, message: AlertRaised) -> None:
        self.monitor_screen.feed_alert(message.run, message.record)
        self.runs_screen.request_refresh()
        rule = message.record.get("rule", "?")
        self.notify(f"{message.run}: watch rule {rule} fired", severity="warning")

    @on(SystemSample)
    def _system_sample(self, message: SystemSample) -> None:
        self.monitor_screen.feed_system(message.run, message.record)
