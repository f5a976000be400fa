"""The TUI against a real engine process on a real Unix socket, with a real tiny training run.

The app starts the campaign's engine itself (nothing answers on the socket yet), the real CLI
queues a run of the tiny model, the Monitor's loss chart fills from the engine's live stream, and
``s`` + ``y`` on the Runs screen stops the run: the worker checkpoints and the table says stopped.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.demo.reverse_task import reverse_rows
from engine.store.campaign import Campaign, engine_paths
from engine.store.checkpoints import complete_checkpoints
from engine.store.jsonl import read_jsonl
from tests.helpers import (
    processes_running,
    stop_engine_and_workers,
    tunedeck,
    wait_for,
    write_jsonl,
    write_run_toml,
)
from tui.app import TunedeckApp
from tui.client import EngineTarget
from tui.screens.confirm import ConfirmScreen
from tui.screens.monitor import MonitorScreen
from tui.widgets.metric_chart import MetricChart

SIZE = (120, 40)


@pytest.fixture
def campaign(tiny_model: Path) -> Iterator[Campaign]:
    """A campaign on the tiny model in a short /tmp path (a Unix socket path has at most 107 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="td-", dir="/tmp"))
    camp = Campaign.create(root / "c", "tui on a socket", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "train.jsonl", reverse_rows(400, seed=1))
    yield camp
    stop_engine_and_workers(camp.root)
    shutil.rmtree(root, ignore_errors=True)


async def wait_until(pilot: Any, condition: Callable[[], Any], what: str, limit_s: float = 120.0) -> Any:
    """``condition()``'s first truthy value, checked while the app runs; a named failure after ``limit_s`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while loop.time() < deadline:
        value = condition()
        if value:
            return value
        await pilot.pause(0.1)
    raise AssertionError(f"timed out after {limit_s} s waiting for {what}")


def loss_chart(app: TunedeckApp) -> MetricChart | None:
    """The Monitor's loss chart, found by type and metric (whatever the layout around it)."""
    for chart in app.screen.query(MetricChart):
        if chart.buffer.metric == "loss":
            return chart
    return None


def loss_steps(app: TunedeckApp) -> int:
    """The newest step of the loss drawn or buffered on the Monitor (0: none yet)."""
    chart = loss_chart(app)
    return (chart.buffer.last_step or 0) if chart is not None and chart.drawn_points else 0


@pytest.mark.slow
async def test_start_watch_and_stop_a_real_run_over_the_socket(campaign: Campaign) -> None:
    root = campaign.root
    toml = write_run_toml(root, "live", max_steps=3000, logging_steps=1, save_steps=1000)
    app = TunedeckApp(EngineTarget(campaign=root))
    async with app.run_test(size=SIZE) as pilot:
        # Nothing answered on the socket: the app started the engine, as it does for a person.
        await wait_until(pilot, lambda: app.connection.connected, "the app to start and reach the engine", 60)
        assert engine_paths(root).socket.exists()
        done = await asyncio.to_thread(tunedeck, "run", str(toml), "--campaign", str(root), "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["state"] in ("queued", "running")
        table = app.runs_screen.table
        await wait_until(pilot, lambda: table.state_of("live") in ("queued", "running"), "the run in the table", 30)

        await pilot.press("enter")  # the only row: open its Monitor
        assert isinstance(app.screen, MonitorScreen)
        assert app.monitor_screen.run_name == "live"
        first = await wait_until(pilot, lambda: loss_steps(app), "loss points on the Monitor")
        later = await wait_until(pilot, lambda: loss_steps(app) >= first + 5, "more points, live", 60)
        assert later
        assert loss_steps(app) >= first + 5

        await pilot.press("1")
        await wait_until(pilot, lambda: table.state_of("live") == "running", "the table to say running", 30)
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_until(pilot, lambda: table.state_of("live") == "stopped", "the table to say stopped", 90)

    run_dir = campaign.run("live").root
    last = read_jsonl(run_dir / "events.jsonl")[-1]
    assert (last["event"], last["reason"]) == ("stopped", "stopped from the TUI")
    assert last["step"] in complete_checkpoints(run_dir / "checkpoints")  # it checkpointed before it ended
    assert last["step"] < 3000
    # The worker writes "stopped", then exits: give it the moment that takes.
    wait_for(lambda: not processes_running("engine.worker", str(run_dir)), timeout=30, what="the worker to exit")
    assert processes_running("engine.service", str(root))  # quitting the app left the engine running
