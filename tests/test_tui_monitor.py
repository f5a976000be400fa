"""Pilot tests of the Monitor's metrics grid against the real engine app in process (ASGITransport).

Pages of every logged metric (TRL's keys included), the filter by glob and substring, the layout
keys, overlays of several runs with their legend, smoothing, the x-axis by wall time, CSV and SVG
exports, and the acceptance case: a run of 1,000,000 logged steps opens with its one grad_norm
spike of 50 drawn at full zoom-out.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.tui_fixtures import SIZE, add_run, bd6_copy, metric_records, tui_app
from tui.app import TunedeckApp
from tui.screens.monitor import MonitorScreen
from tui.screens.run_picker import RunPicker
from tui.widgets.chart_legend import ChartLegend

STAMP = time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1))  # the export clock, fixed: the file name is known
TRL_KEYS = ("reward", "frac_reward_zero_std", "completions/mean_length", "rewards/chosen", "kl")


def grpo_records(steps: int) -> list[dict[str, Any]]:
    """A TRL GRPO-style log: the usual four, TRL's keys, two eval tasks, and the epoch."""
    records = metric_records(steps)
    for record in records:
        step = record["step"]
        if "loss" in record:
            record.update({key: 0.5 + 0.01 * (step % 9) + i for i, key in enumerate(TRL_KEYS)})
            record["epoch"] = step / steps
        if "eval_loss" in record:
            record.update({"eval/humaneval": 0.3 + step / 1000, "eval/mbpp": 0.4 + step / 1000})
    return records


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    root = bd6_copy(tmp_path)
    add_run(root, "grpo", max_steps=200, records=grpo_records(200))
    return root


async def until(pilot: Any, ready: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Wait for ``ready()`` (the machine is shared: never a fixed sleep)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def shown(monitor: MonitorScreen) -> list[str]:
    return [c.metric for c in monitor.charts if c.metric]


def drawn(monitor: MonitorScreen) -> bool:
    return bool(monitor.charts) and all(c.drawn_points > 0 for c in monitor.charts)


async def open_monitor(app: TunedeckApp, pilot: Any, run: str) -> MonitorScreen:
    monitor = app.monitor_screen
    await until(pilot, lambda: isinstance(app.screen, MonitorScreen) and monitor.run_name == run, "the monitor")
    await until(pilot, lambda: len(monitor.charts) == 4 and drawn(monitor), "charts with data")
    return monitor


async def test_pages_cover_every_metric_train_then_eval_and_load_only_what_is_shown(campaign: Path) -> None:
    app = tui_app(campaign, open_run="grpo")
    async with app.run_test(size=SIZE) as pilot:
        monitor = await open_monitor(app, pilot, "grpo")
        assert shown(monitor) == ["loss", "grad_norm", "learning_rate", "eval_loss"]
        # Charts off screen are neither drawn nor fetched.
        assert ("grpo", "reward") not in monitor.data.buffers
        await pilot.press("n")
        await until(pilot, lambda: drawn(monitor) and "reward" in shown(monitor), "page 2")
        assert shown(monitor) == ["completions/mean_length", "frac_reward_zero_std", "kl", "reward"]
        await pilot.press("n")
        await until(pilot, lambda: drawn(monitor) and "epoch" in shown(monitor), "page 3")
        assert shown(monitor) == ["rewards/chosen", "eval/humaneval", "eval/mbpp", "epoch"]
        assert [c.has_class("-eval") for c in monitor.charts] == [False, True, True, False]
        assert "page 3/3" in str(monitor.query_one(ChartLegend).render())
        await pilot.press("n")  # wraps around
        assert shown(monitor)[0] == "loss"
        await pilot.press("N")
        assert shown(monitor)[0] == "rewards/chosen"


async def test_filter_by_glob_by_substring_and_the_eval_key(campaign: Path) -> None:
    app = tui_app(campaign, open_run="grpo")
    async with app.run_test(size=SIZE) as pilot:
        monitor = await open_monitor(app, pilot, "grpo")
        await pilot.press("slash", *"eval/*")
        await until(pilot, lambda: shown(monitor) == ["eval/humaneval", "eval/mbpp"], "the glob applied as typed")
        await pilot.press("enter")
        assert not monitor.query_one("#metric-filter").display
        await until(pilot, lambda: drawn(monitor), "the eval charts drawn")
        assert "filter eval/*" in str(monitor.query_one(ChartLegend).render())
        await pilot.press("slash", "escape")
        assert shown(monitor) == ["loss", "grad_norm", "learning_rate", "eval_loss"]
        await pilot.press("slash", *"REWARD", "enter")  # a substring, any case
        assert shown(monitor) == ["frac_reward_zero_std", "reward", "rewards/chosen"]
        await pilot.press("slash", "escape", "slash", *"completions/", "enter")
        assert shown(monitor) == ["completions/mean_length"]
        await pilot.press("e")
        assert shown(monitor) == ["eval_loss", "eval/humaneval", "eval/mbpp"]
        await pilot.press("e")
        assert len(shown(monitor)) == 4


async def test_layout_keys_and_a_small_terminal_gets_fewer_charts(campaign: Path) -> None:
    app = tui_app(campaign, open_run="grpo")
    async with app.run_test(size=(200, 50)) as pilot:
        monitor = await open_monitor(app, pilot, "grpo")
        await pilot.press("g")
        await until(pilot, lambda: len(monitor.charts) == 6 and drawn(monitor), "a 2x3 grid")
        assert (monitor.grid.rows, monitor.grid.cols) == (2, 3)
        assert shown(monitor)[4:] == ["completions/mean_length", "frac_reward_zero_std"]
        await pilot.press("G", "G")
        assert (monitor.grid.rows, monitor.grid.cols) == (1, 2)
        assert shown(monitor) == ["loss", "grad_norm"]
    small = tui_app(campaign, open_run="grpo")
    async with small.run_test(size=(80, 24)) as pilot:
        monitor = small.monitor_screen
        await until(pilot, lambda: monitor.run_name == "grpo" and drawn(monitor), "charts at 80x24")
        assert (monitor.grid.rows, monitor.grid.cols) == (1, 2)  # 2x2 asked, too small to read: 1x2
        assert all(c.size.height >= 6 for c in monitor.charts)


async def test_overlay_two_runs_with_a_legend_and_one_colour_per_run(campaign: Path) -> None:
    app = tui_app(campaign, open_run="bd6.8d2")
    async with app.run_test(size=SIZE) as pilot:
        monitor = await open_monitor(app, pilot, "bd6.8d2")
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, RunPicker), "the run picker")
        assert app.screen.runs == ["bd6.8d", "grpo"]  # type: ignore[attr-defined]
        await pilot.press("space", "enter")  # tick bd6.8d, overlay
        await until(pilot, lambda: all(len(c.traces) == 2 and len(c.drawn) == 2 for c in monitor.charts), "overlay")
        await until(pilot, lambda: all(len(b) > 0 for c in monitor.charts for _, b in c.drawn), "both drawn")
        legend = monitor.query_one(ChartLegend)
        assert legend.runs == ["bd6.8d2", "bd6.8d"]
        assert "bd6.8d2" in str(legend.render())
        assert "bd6.8d " in str(legend.render())
        loss = monitor.chart_for("loss")
        assert [run for run, _ in loss.drawn] == ["bd6.8d2", "bd6.8d"]
        assert loss.drawn[1][1][-1].last_step == 200  # the overlay's own history (200 steps), from the engine
        colours = {(t.run, t.color) for c in monitor.charts for t in c.traces}
        assert len(colours) == 2  # the same colour for a run on every chart, and not the other's
        # The overlay's live lines reach its buffers too.
        monitor.feed_metrics("bd6.8d", [{"step": 201, "ts": 2000.0, "loss": 0.01}])
        assert monitor.data.buffer("bd6.8d", "loss").last_step == 201


async def test_smoothing_keeps_the_raw_line_and_changes_what_is_drawn(campaign: Path) -> None:
    app = tui_app(campaign, open_run="bd6.8d2")
    async with app.run_test(size=SIZE) as pilot:
        monitor = await open_monitor(app, pilot, "bd6.8d2")
        grad = monitor.chart_for("grad_norm")
        assert len(grad.drawn_lines) == 1  # off by default: the raw line only
        raw = grad.drawn_lines[0]
        await pilot.press("s", "s")
        await until(pilot, lambda: len(grad.drawn_lines) == 2, "the smoothed line")
        assert "EMA 0.8" in str(monitor.query_one(ChartLegend).render())
        behind, smoothed = grad.drawn_lines
        assert behind == raw  # the raw line stays (faint) behind the smoothed one
        assert smoothed != raw
        assert max(smoothed) - min(smoothed) < max(raw) - min(raw)  # the sin(step) wiggle is damped
        assert grad.drawn_max == pytest.approx(40.0)  # the spike stays visible in the envelope
        await pilot.press("S", "S")
        await until(pilot, lambda: len(grad.drawn_lines) == 1, "smoothing off")


async def test_x_axis_by_wall_time(campaign: Path) -> None:
    app = tui_app(campaign, open_run="bd6.8d2")
    async with app.run_test(size=SIZE) as pilot:
        monitor = await open_monitor(app, pilot, "bd6.8d2")
        loss = monitor.chart_for("loss")
        assert loss.drawn_xs[0][-1] == 600.0
        await pilot.press("w")
        await until(pilot, lambda: loss.x_unit != "step", "the wall-time axis")
        # ts = 1000 + 0.5 * step: 299.5 s from the first point to the last, drawn in minutes.
        assert loss.x_unit == "min"
        buckets = loss.drawn[0][1]
        assert buckets[0].first_ts == 1000.5  # the run's first point: the origin
        assert loss.drawn_xs[0] == pytest.approx([((b.last_ts or 0) - 1000.5) / 60 for b in buckets])
        assert loss.drawn_xs[0][-1] == pytest.approx(299.5 / 60)
        assert "x wall time" in str(monitor.query_one(ChartLegend).render())
        await pilot.press("w")
        await until(pilot, lambda: loss.x_unit == "step", "the step axis again")


async def test_csv_export_writes_the_chart_rows_and_never_overwrites(campaign: Path) -> None:
    app = tui_app(campaign, open_run="bd6.8d2")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        monitor = await open_monitor(app, pilot, "bd6.8d2")
        monitor.clock = lambda: STAMP
        grad = monitor.chart_for("grad_norm")
        grad.focus()
        await pilot.press("x")
        path = campaign / "exports" / f"bd6.8d2-grad_norm-{time.strftime('%Y%m%d-%H%M%S', time.localtime(STAMP))}.csv"
        assert path.is_file()
        with path.open(encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == ["run", "metric", "first_step", "last_step", "first_ts", "last_ts", "min", "max", "last",
                           "count"]  # fmt: skip
        buckets = grad.drawn[0][1]
        assert len(rows) == 1 + len(buckets)
        assert sum(int(r[9]) for r in rows[1:]) == 600  # every logged point is in some bucket
        assert max(float(r[7]) for r in rows[1:]) == 40.0  # the spike
        first, b0 = rows[1], buckets[0]
        assert first[:5] == ["bd6.8d2", "grad_norm", "1", str(b0.last_step), "1000.5"]  # ts = 1000 + step / 2
        assert float(first[5]) == 1000 + b0.last_step / 2
        assert float(first[8]) == pytest.approx(1.0 + 0.1 * math.sin(b0.last_step))
        before = path.read_bytes()
        await pilot.press("x")  # the same second: the same name
        await pilot.pause(0.05)
        assert path.read_bytes() == before
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left behind
        messages = [n.message for n in app._notifications]
        assert any("exists already: not overwritten" in m for m in messages)
        assert any(f"chart written to {path}" in m for m in messages)


async def test_svg_export_of_the_screen(campaign: Path) -> None:
    app = tui_app(campaign, open_run="bd6.8d2")
    async with app.run_test(size=SIZE) as pilot:
        monitor = await open_monitor(app, pilot, "bd6.8d2")
        monitor.clock = lambda: STAMP
        await pilot.press("X")
        (svg,) = (campaign / "exports").glob("bd6.8d2-monitor-*.svg")
        text = svg.read_text(encoding="utf-8")
        assert text.lstrip().startswith("<svg")
        assert "bd6.8d2" in text


async def test_a_metric_first_logged_live_joins_the_pages(campaign: Path) -> None:
    app = tui_app(campaign, open_run="bd6.8d2")
    async with app.run_test(size=SIZE) as pilot:
        monitor = await open_monitor(app, pilot, "bd6.8d2")
        monitor.feed_metrics("bd6.8d2", [{"step": 601, "ts": 1400.0, "loss": 0.1, "reward": 0.7}])
        assert "reward" in monitor.pages.shown
        assert monitor.chart_for("loss").buffer.last_step == 601


# -- acceptance: 1,000,000 logged steps -------------------------------------------------------------
BIG_STEPS, SPIKE_STEP = 1_000_000, 654_321


def write_big_metrics(path: Path) -> None:
    """1M lines of loss / grad_norm (near 1, one spike of 50) / learning_rate, written in chunks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for start in range(1, BIG_STEPS + 1, 100_000):
            out.write(
                "".join(
                    f'{{"step":{s},"ts":{1000 + s * 0.1:.1f},"loss":{2 - s * 1e-6:.6f},'
                    f'"grad_norm":{50.0 if s == SPIKE_STEP else 1 + (s % 7) * 0.01},"learning_rate":5e-05}}\n'
                    for s in range(start, min(start + 100_000, BIG_STEPS + 1))
                )
            )


@pytest.fixture(scope="module")
def big_campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = bd6_copy(tmp_path_factory.mktemp("big"))
    add_run(root, "long", max_steps=BIG_STEPS, records=[])
    write_big_metrics(root / "runs" / "long" / "metrics.jsonl")
    return root


@pytest.mark.slow
async def test_a_million_step_run_opens_with_its_spike_visible(big_campaign: Path) -> None:
    app = tui_app(big_campaign, open_run="long")
    app.stream = False  # the stream would replay 100 MB of lines: the history comes from /series
    async with app.run_test(size=(200, 50)) as pilot:
        monitor = app.monitor_screen
        started = time.monotonic()
        await until(pilot, lambda: monitor.run_name == "long" and drawn(monitor), "the 1M-step charts", 120)
        opened = time.monotonic() - started
        grad = monitor.chart_for("grad_norm")
        assert monitor.view_bounds() == (1, BIG_STEPS)  # full zoom-out
        assert grad.drawn_max is not None
        assert grad.drawn_max >= 50.0
        assert max(b.high for b in grad.drawn[0][1]) == 50.0
        assert grad.drawn_points <= grad.size.width * 2
        print(f"1M-step run: charts drawn {opened:.2f} s after the app started")
