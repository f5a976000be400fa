"""Pilot tests of the TUI against the real engine app in process (httpx.ASGITransport, finite streams)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui_fixtures import SIZE, bd6_copy, tui_app, write_jsonl
from tui.app import TunedeckApp
from tui.client import EngineTarget
from tui.screens.monitor import MonitorScreen
from tui.widgets.status_line import StatusLine


@pytest.fixture
def bd6(tmp_path: Path) -> Path:
    return bd6_copy(tmp_path)


async def _wait_for_rows(app: TunedeckApp, pilot: object, rows: int) -> None:
    for _ in range(50):
        if app.runs_screen.is_mounted and app.runs_screen.table.row_count >= rows:
            return
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise AssertionError(f"the runs table never had {rows} rows")


@pytest.mark.parametrize("old_engine", [False, True], ids=["summary", "fallback-to-runs"])
async def test_runs_table_lists_runs_with_production_marked(bd6: Path, old_engine: bool) -> None:
    app = tui_app(bd6, old=old_engine)
    async with app.run_test(size=SIZE) as pilot:
        await _wait_for_rows(app, pilot, 2)
        table = app.runs_screen.table
        names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        if old_engine:
            assert names == ["  bd6.8d", "  bd6.8d2"]
            assert "no /runs/summary" in str(app.runs_screen.query_one("#runs-note").render())
        else:
            assert names == ["★ bd6.8d", "  bd6.8d2"]  # production.json points at bd6.8d
            assert str(table.get_row_at(1)[3]) != "—"  # last loss filled in


@pytest.mark.parametrize("old_engine", [False, True], ids=["series", "fallback-to-metrics"])
async def test_enter_opens_monitor_with_charts_that_have_data(bd6: Path, old_engine: bool) -> None:
    app = tui_app(bd6, old=old_engine)
    async with app.run_test(size=SIZE) as pilot:
        await _wait_for_rows(app, pilot, 2)
        await pilot.press("down", "enter")
        monitor = app.monitor_screen
        assert isinstance(app.screen, MonitorScreen)
        assert monitor.run_name == "bd6.8d2"
        await pilot.pause(0.8)
        charts = {c.buffer.metric: c for c in monitor.charts}
        assert set(charts) == {"loss", "grad_norm", "learning_rate", "eval_loss"}
        assert all(c.drawn_points > 0 for c in charts.values())
        # The grad-norm spike at step 300 survives decimation to the chart's width.
        assert max(b.high for b in charts["grad_norm"].buffer.visible(1, 600, 100)) == pytest.approx(40.0)
        if not old_engine:
            app.save_screenshot(filename="tunedeck-monitor.svg", path="/tmp")


async def test_run_option_opens_straight_on_that_runs_monitor(bd6: Path) -> None:
    """`python -m tui PATH --run RUN`, as `tunedeck demo` opens it: the run's charts, no key pressed."""
    app = tui_app(bd6, open_run="bd6.8d2")
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(100):  # the machine may be busy: wait for the charts, up to 10 s
            if any(c.drawn_points > 0 for c in app.monitor_screen.charts):
                break
            await pilot.pause(0.1)
        assert isinstance(app.screen, MonitorScreen)
        assert app.monitor_screen.run_name == "bd6.8d2"
        assert any(c.drawn_points > 0 for c in app.monitor_screen.charts)


async def test_zoom_and_pan_change_the_visible_range(bd6: Path) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE) as pilot:
        await _wait_for_rows(app, pilot, 2)
        await pilot.press("down", "enter")
        await pilot.pause(0.8)
        monitor = app.monitor_screen
        assert monitor.view_bounds() == (1, 600)
        await pilot.press("plus")
        await pilot.pause(0.3)
        start, end = monitor.view_bounds() or (0, 0)
        assert end == 600
        assert 250 < start < 350
        loss = monitor.chart_for("loss")
        # The zoom asked the engine again: the loss chart's finer buckets cover the range in view.
        assert loss.buffer.detail_range == (start, end)
        await pilot.press("left_square_bracket")
        await pilot.pause(0.2)
        panned = monitor.view_bounds() or (0, 0)
        assert panned[1] < 600
        assert not monitor.window.live
        await pilot.press("minus", "minus", "minus")
        assert monitor.view_bounds() == (1, 600)
        assert monitor.window.live


async def test_stream_points_reach_the_monitor(bd6: Path) -> None:
    """Lines appended to metrics.jsonl come through the campaign stream into the chart buffers."""
    app = tui_app(bd6)
    app.stream = False  # read the stream by hand below, after the run is open
    async with app.run_test(size=SIZE) as pilot:
        await _wait_for_rows(app, pilot, 2)
        await pilot.press("down", "enter")
        await pilot.pause(0.8)
        # A stream from a cursor at the end of the file brings only the new line.
        metrics = bd6 / "runs" / "bd6.8d2" / "metrics.jsonl"
        size = metrics.stat().st_size
        app.client.last_event_id = f"bd6.8d2:{size}.0.0"
        with metrics.open("a", encoding="utf-8") as handle:
            handle.write('{"step": 601, "ts": 2000.0, "loss": 0.1, "grad_norm": 1.0, "learning_rate": 5e-5}\n')
        await app.client.consume_stream(app.post_message)
        await pilot.pause(0.3)
        loss = app.monitor_screen.chart_for("loss")
        assert loss.buffer.last_step == 601
        # The cursor moved to the file's new end: a reconnection resumes after this line.
        assert f"bd6.8d2:{metrics.stat().st_size}.0.0" in (app.client.last_event_id or "")


async def test_unreachable_engine_shows_the_retry_notice(tmp_path: Path) -> None:
    campaign = tmp_path / "c"
    write_jsonl(campaign / "runs" / ".keep.jsonl", [])
    (campaign / "campaign.toml").write_text('name = "c"\n', encoding="utf-8")
    app = TunedeckApp(EngineTarget(campaign=campaign, autostart=False))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        line = str(app.runs_screen.query_one(StatusLine).render())
        assert "engine unreachable, retrying in" in line
        assert "cannot reach the engine" in str(app.runs_screen.query_one("#runs-note").render())
        await pilot.press("q")
    assert app.return_code in (0, None)


async def test_keys_and_palette_list_every_action(bd6: Path) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE) as pilot:
        await _wait_for_rows(app, pilot, 2)
        names = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Runs", "Monitor", "Stop", "Start/Resume", "New run", "Merge", "Monitor run", "Keys"} <= names
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert app.screen.query("HelpPanel")
        await pilot.press("2")
        assert isinstance(app.screen, MonitorScreen)
        names = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Zoom in", "Zoom out", "Pan left", "Pan right"} <= names


async def test_stop_asks_first_and_reports_the_refusal(bd6: Path) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _wait_for_rows(app, pilot, 2)
        await pilot.press("s")
        await pilot.pause(0.1)
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("y")
        await pilot.pause(0.5)
        messages = [n.message for n in app._notifications]
        assert messages, "the stop's answer was not shown"


async def test_before_the_engine_answers_the_runs_come_from_the_files(bd6: Path) -> None:
    """A cold start waits seconds for the engine: the table shows the runs, production ★, at once."""
    app = TunedeckApp(EngineTarget(campaign=bd6, autostart=False))  # nothing answers on the socket
    async with app.run_test(size=SIZE) as pilot:
        await _wait_for_rows(app, pilot, 2)
        table = app.runs_screen.table
        names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert names == ["★ bd6.8d", "  bd6.8d2"]
        assert table.state_of("bd6.8d2") == "created"
        assert "engine unreachable" in str(app.runs_screen.query_one(StatusLine).render())
