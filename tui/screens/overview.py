"""The overview screen (``i`` on the Monitor): one run's figures, its config, and how that differs from production's.

Everything comes from the engine in one request (``GET /runs/{run}/overview``): the TUI never
parses run.toml nor opens the bench cache. The differences list only the keys whose values
differ, this run's value beside production's; when the run is production, or nothing is, it
says so. Escape closes; ``ctrl+r`` asks again.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from engine.api import ConfigChange, ConfigSection, RunOverview, RunSummary
from tui.client import EngineCallError, EngineClient

CHANGE_MARK = {"added": "+", "removed": "−", "changed": "~"}


def format_value(value: object) -> str:
    """A config value as a person reads TOML: true/false, lists joined, None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def format_duration(seconds: float | None) -> str:
    """``1h 02m 03s``, ``4m 05s``, ``12s``; a dash when unknown."""
    if seconds is None:
        return "—"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def summary_lines(summary: RunSummary, runtime_s: float | None) -> list[str]:
    """The run's figures, one fact per line."""
    steps = f"{summary.step}/{summary.max_steps}" if summary.max_steps else str(summary.step)
    state = summary.state + (f" (pid {summary.pid})" if summary.pid else "")
    state += f": {summary.reason}" if summary.reason else ""
    loss = f"{summary.last_loss:.4g}" if summary.last_loss is not None else "—"
    best = summary.best_eval
    best_text = f"{best.metric} {best.value:.4g} @ step {best.step}" if best else "—"
    rates = "  ".join(f"{bench} {rate:.1%}" for bench, rate in summary.pass_rates.items()) or "no bench results"
    return [
        f"state      {state}{'   ★ in production' if summary.production else ''}",
        f"steps      {steps}",
        f"last loss  {loss}",
        f"best eval  {best_text}",
        f"pass rates {rates}",
        f"gate       {summary.gate or '—'}",
        f"alerts     {summary.alerts}",
        f"runtime    {format_duration(runtime_s)}",
    ] + ([f"job        {summary.job}"] if summary.job else [])


def diff_table(overview: RunOverview) -> RenderableType:
    """This run's config against production's, changed keys only (or why there is nothing to show)."""
    if overview.production_diff is None:
        return Text(f"Differences from production: {overview.production_note or 'nothing to compare'}")
    if not overview.production_diff:
        return Text(f"Differences from production ({overview.production}): none, the same config")
    table = Table(title=f"Differences from production ({overview.production})", title_justify="left", expand=True)
    table.add_column("", width=1)
    table.add_column("key", style="bold")
    table.add_column(f"this run ({overview.run})")
    table.add_column(f"production ({overview.production})")
    for change in overview.production_diff:
        table.add_row(*(Text(cell) for cell in diff_row(change)))  # Text: a value like [a, b] is not markup
    return table


def diff_row(change: ConfigChange) -> tuple[str, str, str, str]:
    """One row of the differences table: mark, key, this run's value, production's."""
    mine = format_value(change.value) if change.change != "removed" else "(absent)"
    theirs = format_value(change.other) if change.change != "added" else "(absent)"
    return CHANGE_MARK[change.change], change.key, mine, theirs


def config_tables(sections: list[ConfigSection], error: str | None) -> RenderableType:
    """The resolved config, one small table per group."""
    if error is not None:
        return Text(f"Config: {error}", style="bold red")
    tables: list[RenderableType] = []
    for section in sections:
        table = Table(title=section.title, title_justify="left", show_header=False, expand=True)
        table.add_column("key", style="bold", ratio=1)
        table.add_column("value", ratio=2)
        for key, value in section.values.items():
            table.add_row(Text(key), Text(format_value(value)))
        tables.append(table)
    return Group(*tables)


class OverviewScreen(Screen[None]):
    """Figures, config and production differences of one run."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("ctrl+r", "refresh", "Refresh"),
    ]

    def __init__(self, client: EngineClient, run: str) -> None:
        super().__init__(id="overview")
        self.client = client
        self.run_name = run
        self.overview: RunOverview | None = None

    def compose(self) -> ComposeResult:
        yield Label(f"overview of {self.run_name}: loading", id="overview-title")
        with VerticalScroll(id="overview-body"):
            yield Static("", id="overview-summary")
            yield Static("", id="overview-diff")
            yield Static("", id="overview-config")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#overview-body").focus()
        self.load()

    @work(exclusive=True, group="overview-load")
    async def load(self) -> None:
        """Ask the engine for the overview and show it."""
        title = self.query_one("#overview-title", Label)
        try:
            overview = await self.client.overview(self.run_name)
        except EngineCallError as exc:
            title.update(f"overview of {self.run_name}: not loaded")
            self.notify(str(exc), title=f"overview {self.run_name}", severity="error", timeout=8)
            return
        self.overview = overview
        title.update(f"overview of {self.run_name}")
        lines = summary_lines(overview.summary, overview.runtime_s)
        self.query_one("#overview-summary", Static).update(Text("\n".join(lines)))
        self.query_one("#overview-diff", Static).update(diff_table(overview))
        self.query_one("#overview-config", Static).update(config_tables(overview.config, overview.config_error))

    def action_close(self) -> None:
        """Back to the Monitor."""
        self.dismiss()

    def action_refresh(self) -> None:
        """Ask the engine again."""
        self.load()
