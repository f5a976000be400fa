"""The console screen (``c`` on the Monitor): the worker's stdout/stderr tail of one run, followed live.

The engine serves the last lines of ``runs/<run>/worker.log`` (``GET /runs/{run}/console``); the
stream does not carry them, so this screen polls — one request at a time, the next scheduled
``POLL_S`` after the last one finished, and only while the screen is shown. Scrolling back stops
the view from following; ``End`` follows again. Escape closes.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Label

from tui.client import EngineCallError, EngineClient
from tui.widgets.console_view import ConsoleView

POLL_S = 1.0
TAIL = 1000  # lines asked for per poll (the engine allows up to 5000)


class ConsoleScreen(Screen[None]):
    """The tail of one run's worker console."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("end", "follow", "Follow"),
        Binding("home", "top", "Top"),
        Binding("ctrl+r", "refresh", "Refresh"),
    ]

    def __init__(self, client: EngineClient, run: str) -> None:
        super().__init__(id="console")
        self.client = client
        self.run_name = run
        self.polls = 0  # answers received (tests wait on it)
        self.empty = True  # the run has no console output (yet)
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label(f"console of {self.run_name}: loading", id="console-title")
        yield ConsoleView(id="console-log")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ConsoleView).focus()
        self.poll()

    @property
    def log_view(self) -> ConsoleView:
        """The log widget."""
        return self.query_one(ConsoleView)

    @work(exclusive=True, group="console-poll")
    async def poll(self) -> None:
        """Fetch the tail once, show what is new, then schedule the next poll."""
        title = self.query_one("#console-title", Label)
        try:
            text = await self.client.console(self.run_name, tail=TAIL)
        except EngineCallError as exc:
            title.update(f"console of {self.run_name}: not refreshed ({exc})")
        else:
            self.polls += 1
            self.empty = not text
            self.log_view.show_tail(text)
            if self.empty:
                title.update(f"console of {self.run_name}: no console output (the run has no worker.log yet)")
            else:
                title.update(f"console of {self.run_name}: last {len(self.log_view.shown)} lines, following")
        self._schedule()

    def _schedule(self) -> None:
        # The next poll starts POLL_S after this one ended: polls never overlap, however slow the engine.
        if self.is_attached:
            self._timer = self.set_timer(POLL_S, self._tick)

    def _tick(self) -> None:
        if self.is_current:
            self.poll()
        else:
            self._schedule()  # hidden behind a dialog: check again later, fetch nothing

    def action_close(self) -> None:
        """Back to the Monitor."""
        if self._timer is not None:
            self._timer.stop()
        self.dismiss()

    def action_follow(self) -> None:
        """Scroll to the newest line (the view follows from there)."""
        self.log_view.scroll_end(animate=False)

    def action_top(self) -> None:
        """Scroll to the oldest line shown."""
        self.log_view.scroll_home(animate=False)

    def action_refresh(self) -> None:
        """Fetch now (the poll under way, if any, is replaced)."""
        if self._timer is not None:
            self._timer.stop()
        self.poll()
