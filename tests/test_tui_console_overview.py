"""Pilot tests of the console (c) and run overview (i) screens against the real engine app in process."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.widgets import Label, Static

from tests.tui_fixtures import REPO, SIZE, bd6_copy, tui_app
from tui.app import TunedeckApp
from tui.screens.console import POLL_S, ConsoleScreen
from tui.screens.monitor import MonitorScreen
from tui.screens.overview import OverviewScreen, format_duration, format_value
from tui.widgets.console_view import GAP_MARKER, ConsoleView, new_lines
from tui.widgets.metric_chart import MetricChart


@pytest.fixture
def bd6(tmp_path: Path) -> Path:
    """bd6_copy's two runs, with the session's own run.toml files (bd6.8d2 changes bd6.8d's weight rules)."""
    root = bd6_copy(tmp_path)
    for run in ("bd6.8d", "bd6.8d2"):
        shutil.copy(REPO / "sessions" / "bd6" / "runs" / run / "run.toml", root / "runs" / run / "run.toml")
    return root


def text_of(renderable: Any, width: int = 160) -> str:
    """What a Rich renderable (a Static's content) prints, as plain text."""
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


async def wait_until(pilot: Any, condition: Any, what: str, limit_s: float = 5.0) -> None:
    for _ in range(int(limit_s / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def open_on_monitor(app: TunedeckApp, pilot: Any) -> None:
    """Wait for the Monitor to have drawn its run (its loading done before a key is pressed)."""
    await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), "the Monitor")
    charts = lambda: app.screen.query(MetricChart)  # noqa: E731
    await wait_until(pilot, lambda: any(chart.drawn_points for chart in charts()), "the Monitor's charts")
    await pilot.pause(0.2)


def test_new_lines_appends_after_the_overlap_and_marks_a_gap() -> None:
    assert new_lines([], ["a", "b"]) == (["a", "b"], False)
    assert new_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == (["d", "e"], False)
    assert new_lines(["a", "b"], ["a", "b"]) == ([], False)
    assert new_lines(["x", "x"], ["x", "x", "x"]) == (["x"], False)  # repeated lines: the longest overlap
    assert new_lines(["a", "b"], ["p", "q"]) == (["p", "q"], True)  # rotated, or more than a tail came


async def test_console_follows_the_worker_log_and_scrolling_back_stops_following(bd6: Path) -> None:
    log = bd6 / "runs" / "bd6.8d2" / "worker.log"
    log.write_text("".join(f"line {i}\n" for i in range(200)))
    app = tui_app(bd6, open_run="bd6.8d2")
    async with app.run_test(size=SIZE) as pilot:
        await open_on_monitor(app, pilot)
        opened = time.monotonic()
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        assert screen.run_name == "bd6.8d2"
        view = screen.query_one(ConsoleView)
        await wait_until(pilot, lambda: view.line_count == 200, "the first tail")
        assert view.lines[0] == "line 0"
        assert view.lines[-1] == "line 199"
        await pilot.pause(0.1)
        assert view.scroll_y == view.max_scroll_y > 0  # at the end
        with log.open("a") as out:
            out.write("line 200\nline 201\n")
        await wait_until(pilot, lambda: view.line_count == 202, "the appended lines", limit_s=4)
        assert list(view.lines[-3:]) == ["line 199", "line 200", "line 201"]  # appended once, not re-written
        await pilot.pause(0.1)
        assert view.scroll_y == view.max_scroll_y  # followed
        await pilot.press("home")
        await pilot.pause(0.1)
        assert view.scroll_y == 0
        with log.open("a") as out:
            out.write("line 202\n")
        await wait_until(pilot, lambda: view.line_count == 203, "one more line", limit_s=4)
        await pilot.pause(0.1)
        assert view.scroll_y == 0  # scrolled back: the view stays where the person put it
        await pilot.press("end")
        await pilot.pause(0.1)
        assert view.scroll_y == view.max_scroll_y
        # One poll after another, each POLL_S after the last ended: never more than the time allows.
        assert 3 <= screen.polls <= (time.monotonic() - opened) / POLL_S + 1
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, MonitorScreen)


async def test_console_of_a_run_without_output_says_so(bd6: Path) -> None:
    app = tui_app(bd6, open_run="bd6.8d")
    async with app.run_test(size=SIZE) as pilot:
        await open_on_monitor(app, pilot)
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        await wait_until(pilot, lambda: screen.polls >= 1, "the first poll")
        title = str(screen.query_one("#console-title", Label).render())
        assert title == "console of bd6.8d: no console output (the run has no worker.log yet)"
        assert screen.query_one(ConsoleView).line_count == 0


async def test_console_marks_a_rotated_log(bd6: Path) -> None:
    log = bd6 / "runs" / "bd6.8d2" / "worker.log"
    log.write_text("old 1\nold 2\n")
    app = tui_app(bd6, open_run="bd6.8d2")
    async with app.run_test(size=SIZE) as pilot:
        await open_on_monitor(app, pilot)
        await pilot.press("c")
        view = app.screen.query_one(ConsoleView)
        await wait_until(pilot, lambda: view.line_count == 2, "the first tail")
        log.write_text("new 1\n")  # a new launch after a rotation
        await wait_until(pilot, lambda: view.line_count == 4, "the new log", limit_s=4)
        assert list(view.lines) == ["old 1", "old 2", GAP_MARKER, "new 1"]


async def test_overview_shows_figures_config_and_the_differences_from_production(bd6: Path) -> None:
    app = tui_app(bd6, open_run="bd6.8d2")
    async with app.run_test(size=SIZE) as pilot:
        await open_on_monitor(app, pilot)
        await pilot.press("i")
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        await wait_until(pilot, lambda: screen.overview is not None, "the overview")
        summary = text_of(screen.query_one("#overview-summary", Static).content)
        assert "state      created" in summary  # bd6_copy's runs have metrics but no events
        assert "steps      600" in summary
        assert "last loss  0.2308" in summary  # 3 / (1 + 600 / 50), the last logged loss
        assert "best eval  eval_loss 0.2941 @ step 600" in summary
        assert "pass rates humaneval 16.7%  mbpp 92.3%" in summary
        assert "gate       failed" in summary
        diff = text_of(screen.query_one("#overview-diff", Static).content)
        assert "Differences from production (bd6.8d)" in diff
        rows = {line.split("│")[2].strip(): line for line in diff.splitlines() if line.count("│") >= 4}
        assert rows["weights.rules[1].weight"].split("│")[3].strip() == "4"
        assert rows["weights.rules[1].weight"].split("│")[4].strip() == "2"
        assert rows["weights.rules[3].task_id"].split("│")[4].strip() == "(absent)"
        assert "train.learning_rate" not in rows  # the same in both: not listed
        config = text_of(screen.query_one("#overview-config", Static).content)
        for title in ("Run", "LoRA", "Optimiser", "Schedule", "Weights policy"):
            assert f"\n{title}" in f"\n{config}"
        assert "train.learning_rate" in config
        assert "5e-05" in config
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, MonitorScreen)


async def test_overview_of_production_says_it_is_production(bd6: Path) -> None:
    app = tui_app(bd6, open_run="bd6.8d")
    async with app.run_test(size=SIZE) as pilot:
        await open_on_monitor(app, pilot)
        await pilot.press("i")
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        await wait_until(pilot, lambda: screen.overview is not None, "the overview")
        diff = text_of(screen.query_one("#overview-diff", Static).content)
        assert diff.strip() == "Differences from production: this run is in production"
        assert "★ in production" in text_of(screen.query_one("#overview-summary", Static).content)


async def test_overview_error_is_a_notification(bd6: Path) -> None:
    app = tui_app(bd6, open_run="bd6.8d2")
    async with app.run_test(size=SIZE) as pilot:
        await open_on_monitor(app, pilot)
        app.push_screen(OverviewScreen(app.client, "gone"))
        await pilot.pause(0.5)
        assert isinstance(app.screen, OverviewScreen)
        assert str(app.screen.query_one("#overview-title", Label).render()) == "overview of gone: not loaded"
        assert any("no run named 'gone'" in n.message for n in app._notifications)


async def test_console_and_overview_keys_are_listed_on_the_monitor(bd6: Path) -> None:
    app = tui_app(bd6, open_run="bd6.8d2")
    async with app.run_test(size=SIZE) as pilot:
        await open_on_monitor(app, pilot)
        keys = {key: active.binding.description for key, active in app.screen.active_bindings.items()}
        assert keys["c"] == "Console"
        assert keys["i"] == "Run overview"


def test_value_and_duration_formats() -> None:
    assert [format_value(v) for v in (None, True, 5e-05, ["q_proj", "v_proj"], 8)] == [
        "—", "true", "5e-05", "[q_proj, v_proj]", "8",
    ]  # fmt: skip
    assert [format_duration(s) for s in (None, 12.4, 245, 3723)] == ["—", "12s", "4m 05s", "1h 02m 03s"]
