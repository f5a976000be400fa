"""Snapshot tests (pytest-textual-snapshot): the Runs and Compare screens on a copy of sessions/bd6.

The app is the real one on the in-process engine (tests/tui_fixtures.py); ``run_before`` waits
until the data is on screen, so the picture never depends on how fast the engine answered.
Nothing shown moves by itself: no clock, no spinner, no blinking cursor (the text filter is
closed). ``pytest --snapshot-update tests/test_tui_snapshots.py`` rewrites the SVGs under
tests/__snapshots__/ after a change on purpose; look at the report before accepting them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable

from tests.tui_fixtures import SIZE, bd6_copy, tui_app
from tui.app import TunedeckApp
from tui.widgets.status_line import StatusLine

Snap = Callable[..., bool]


async def until(pilot: Pilot[Any], done: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if done():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"never happened: {what}")


def connected(app: TunedeckApp) -> bool:
    """The status line says so (the stream's first answer can come after the first rows)."""
    return "engine connected" in str(app.screen.query_one(StatusLine).render())


def widths_settled(*tables: DataTable[Any]) -> bool:
    """Each column is as wide as its widest cell: a DataTable measures new rows when idle, not at once."""
    for table in tables:
        for key, column in table.columns.items():
            if column.content_width < max((len(str(cell)) for cell in table.get_column(key)), default=0):
                return False
    return True


def runs_listed(app: TunedeckApp) -> bool:
    table = app.runs_screen.table if app.runs_screen.is_mounted else None
    return table is not None and table.row_count == 2 and connected(app) and widths_settled(table)


def compare_loaded(app: TunedeckApp) -> bool:
    screen = app.compare_screen
    if not screen.is_mounted or screen.matrix.matrix is None:
        return False
    head = str(screen.query_one("#compare-head").render())
    count = str(screen.query_one("#rows-count").render())
    gate = str(screen.query_one("#gate-verdict").render())
    loaded = "against" in head and count.startswith("rows") and "GATE" in gate and connected(app)
    return loaded and widths_settled(screen.rows_table, screen.matrix)


async def open_compare_on_bd6_8d2(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, TunedeckApp)
    await until(pilot, lambda: runs_listed(app), "the runs")
    await pilot.press("down", "3")
    await until(pilot, lambda: compare_loaded(app), "the comparison")


async def runs_on_screen(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, TunedeckApp)
    await until(pilot, lambda: runs_listed(app), "the runs")


def test_runs_screen(snap_compare: Snap, tmp_path: Path) -> None:
    assert snap_compare(tui_app(bd6_copy(tmp_path)), terminal_size=SIZE, run_before=runs_on_screen)


def test_compare_screen_bd6_8d2_against_production(snap_compare: Snap, tmp_path: Path) -> None:
    assert snap_compare(tui_app(bd6_copy(tmp_path)), terminal_size=SIZE, run_before=open_compare_on_bd6_8d2)


def test_compare_screen_at_80_columns(snap_compare: Snap, tmp_path: Path) -> None:
    assert snap_compare(tui_app(bd6_copy(tmp_path)), terminal_size=(80, 24), run_before=open_compare_on_bd6_8d2)
