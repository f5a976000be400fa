"""Benchmark: the Monitor on a run of 1,000,000 logged steps — time to open it, and the time per redrawn frame.

    python tests/perf/bench_tui_monitor_redraw.py [--steps 1000000] [--frames 60] [--repeats 5] [--json]

Measured **in process**: the real ``TunedeckApp`` under ``run_test`` (headless, 200x50) on the real
engine app over ``httpx.ASGITransport`` (no socket: the figures are the TUI's and the engine's
work, not the transport's). The campaign (a temporary folder) has a run ``long`` of ``--steps``
steps (loss, grad_norm with one spike of 50 among values near 1, learning_rate, ts; eval_loss
every 1,000 steps) and a run ``short`` of 1,000 steps for comparison.

- **Open**: from ``action_monitor_run(run)`` until the loss, grad_norm and learning_rate charts have
  drawn and the grad_norm chart's drawn maximum is the spike (50): the first open of ``long``
  (cold: the engine builds its column index from the 60 MB file), then warm opens (a fresh app on
  the same engine), and ``short`` the same way.
- **Redraw per frame**, on ``long`` at full zoom-out: a new live point goes in through the Monitor's
  ``feed_metrics`` (as the stream delivers it), then ``MonitorScreen.redraw`` (every chart gets
  its new buckets and lays its braille plot out) and Textual paints (``MetricChart.render``). The frame
  cost is redraw + the renders of that frame; goal <= 50 ms. Also the wall time of the whole frame.
- **Baseline**: the same 1M raw points given to plotext directly (``plot`` + ``build``, braille
  markers, each chart's size on screen), for each metric the Monitor charts: what a viewer that
  plots every point pays per frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine_load import OtherLoad, wait_for_quiet  # noqa: E402
from tui_probe import DrawTimer, all_drawn, chart_metric, charts_of, drawn_high  # noqa: E402

from engine.service.app import create_app  # noqa: E402
from engine.store.campaign import Campaign  # noqa: E402
from tui.app import TunedeckApp  # noqa: E402
from tui.client import EngineTarget  # noqa: E402

SIZE = (200, 50)
SPIKE = 50.0
GOAL_FRAME_MS = 50.0
TRAIN = ("loss", "grad_norm", "learning_rate")


def values(step: int, steps: int) -> dict[str, float]:
    """One training log line's metrics (the spike at two thirds of the run)."""
    grad = SPIKE if step == steps * 2 // 3 else 1.0 + 0.05 * math.sin(step / 7)
    return {"loss": 2.0 / (1 + step / 1e5), "grad_norm": grad, "learning_rate": 5e-5 * min(1.0, step / 1000)}


def write_run(campaign: Campaign, name: str, steps: int) -> None:
    run = campaign.run(name)
    run.root.mkdir(parents=True)
    run.run_toml.write_text(f'dataset = "datasets/train.jsonl"\n[train]\nmax_steps = {steps}\n', encoding="utf-8")
    with open(run.metrics, "w", encoding="utf-8") as out:
        for step in range(1, steps + 1):
            v = values(step, steps)
            out.write(
                f'{{"step":{step},"loss":{v["loss"]:.6f},"grad_norm":{v["grad_norm"]:.6f},'
                f'"learning_rate":{v["learning_rate"]:.6g},"ts":{1e6 + step * 0.2:.1f}}}\n'
            )
            if step % 1000 == 0:
                out.write(f'{{"step":{step},"eval_loss":{2.2 / (1 + step / 1e5):.6f},"ts":{1e6 + step * 0.2:.1f}}}\n')


def make_campaign(steps: int) -> Campaign:
    campaign = Campaign.create(Path(tempfile.mkdtemp(prefix="td-redraw-")) / "c", "redraw")
    (campaign.root / "datasets").mkdir(exist_ok=True)
    (campaign.root / "datasets" / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n', encoding="utf-8")
    write_run(campaign, "long", steps)
    write_run(campaign, "short", 1000)
    return Campaign.open(campaign.root)


def tui_on(engine: Any, root: Path) -> TunedeckApp:
    app = TunedeckApp(EngineTarget(campaign=root, transport=httpx.ASGITransport(app=engine)), stream=False)
    app.client.follow = False
    return app


async def wait(pilot: Any, condition: Any, what: str, limit_s: float = 120.0) -> None:
    deadline = time.perf_counter() + limit_s
    while not condition():
        if time.perf_counter() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await pilot.pause(0.002)


def spike_drawn(app: TunedeckApp) -> bool:
    charts = [c for c in charts_of(app) if chart_metric(c) == "grad_norm"]
    return bool(charts) and (drawn_high(charts[0]) or 0.0) >= SPIKE * 0.999


async def time_open(engine: Any, root: Path, run: str, spike: bool) -> float:
    """Milliseconds from asking for the Monitor on ``run`` to its charts drawn (and the spike, if any)."""
    app = tui_on(engine, root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)  # the Runs screen up first
        started = time.perf_counter()
        app.action_monitor_run(run)
        await wait(pilot, lambda: all_drawn(app, TRAIN) and (not spike or spike_drawn(app)), f"{run} drawn")
        return 1000 * (time.perf_counter() - started)


async def time_frames(engine: Any, root: Path, steps: int, frames: int) -> dict[str, Any]:
    """Per frame: one new point fed, redraw, paint; the cost of redraw + renders, and the wall time."""
    timer = DrawTimer().install()
    try:
        app = tui_on(engine, root)
        async with app.run_test(size=SIZE) as pilot:
            app.action_monitor_run("long")
            await wait(pilot, lambda: all_drawn(app, TRAIN) and spike_drawn(app), "long drawn")
            await pilot.pause(0.5)
            monitor = app.screen
            sizes = {chart_metric(c): (c.size.width, c.size.height) for c in charts_of(app)}
            costs, walls, renders, redraws, paints = [], [], [], [], []
            for index in range(frames):
                timer.reset()
                started = time.perf_counter()
                step = steps + 1 + index
                monitor.feed_metrics("long", [{"step": step, "ts": 1e6 + step * 0.2, **values(step, steps)}])
                monitor.redraw()
                await pilot.pause()  # Textual paints what was refreshed
                walls.append(1000 * (time.perf_counter() - started))
                costs.append(sum(timer.redraw_ms) + sum(timer.render_ms))
                renders.append(len(timer.render_ms))
                redraws.append(sum(timer.redraw_ms))
                paints.extend(timer.render_ms)
    finally:
        timer.uninstall()
    return {
        "frame_cost_ms": stats(costs),
        "frame_wall_ms": stats(walls),
        "redraw_ms": stats(redraws),
        "paint_one_chart_ms": stats(paints),
        "charts_painted_per_frame": statistics.median(renders),
        "chart_sizes": sizes,
    }


def plotext_baseline(steps: int, sizes: dict[str, tuple[int, int]], repeats: int) -> dict[str, Any]:
    """plotext given every raw point of each charted metric, at that chart's size: ms per frame."""
    import plotext

    xs = list(range(1, steps + 1))
    series = {name: [values(s, steps)[name] for s in xs] for name in TRAIN}
    evals = (list(range(1000, steps + 1, 1000)), [2.2 / (1 + s / 1e5) for s in range(1000, steps + 1, 1000)])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for metric, (width, height) in sizes.items():
            plotext.clear_figure()
            plotext.plotsize(width, height)
            x, y = (xs, series[metric]) if metric in series else evals
            plotext.plot(x, y, marker="braille")
            plotext.build()
        times.append(1000 * (time.perf_counter() - started))
    return {"frame_ms": stats(times), "charts": list(sizes)}


def stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return {"median": round(statistics.median(ordered), 2), "p95": round(p95, 2), "min": round(ordered[0], 2)}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    campaign = make_campaign(args.steps)
    try:
        engine = create_app(campaign)
        load = OtherLoad()
        wait_for_quiet(args.quiet_wait)
        load.start()
        cold = await time_open(engine, campaign.root, "long", True)
        warm = [await time_open(engine, campaign.root, "long", True) for _ in range(args.repeats)]
        short = [await time_open(engine, campaign.root, "short", False) for _ in range(args.repeats + 1)][1:]
        open_cores = load.cores()
        wait_for_quiet(args.quiet_wait)
        load.start()
        frames = await time_frames(engine, campaign.root, args.steps, args.frames)
        frame_cores = load.cores()
        wait_for_quiet(args.quiet_wait)
        load.start()
        baseline = plotext_baseline(args.steps, frames["chart_sizes"], max(1, args.repeats // 2))
        baseline_cores = load.cores()
    finally:
        shutil.rmtree(campaign.root.parent, ignore_errors=True)
    return {
        "steps": args.steps,
        "open_long_cold_ms": round(cold, 1),
        "open_long_warm_ms": stats(warm),
        "open_short_warm_ms": stats(short),
        "open_other_cores": open_cores,
        **frames,
        "frame_other_cores": frame_cores,
        "plotext_raw_baseline": baseline,
        "baseline_other_cores": baseline_cores,
        "baseline_over_frame_cost": round(baseline["frame_ms"]["median"] / frames["frame_cost_ms"]["median"], 1),
        "goal_frame_ms": GOAL_FRAME_MS,
        "goal_met": frames["frame_cost_ms"]["p95"] <= GOAL_FRAME_MS,
    }


def cores(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quiet-wait", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    if args.json:
        print(json.dumps(result))
        return
    print(f"Monitor on {args.steps:,} steps, in process (ASGI), {SIZE[0]}x{SIZE[1]}:")
    print(f"  open long, cold (engine builds its index): {result['open_long_cold_ms']} ms")
    print(f"  open long, warm: {result['open_long_warm_ms']} ms")
    print(f"  open short (1,000 steps), warm: {result['open_short_warm_ms']} ms")
    print(f"  frame cost (redraw + paint of {result['charts_painted_per_frame']} charts): {result['frame_cost_ms']} ms")
    print(f"    of which MonitorScreen.redraw {result['redraw_ms']} ms")
    print(f"    and one chart's paint (MetricChart.render) {result['paint_one_chart_ms']} ms")
    print(f"  frame wall time (feed, redraw, Textual's paint): {result['frame_wall_ms']} ms")
    print(f"  baseline, plotext on the raw points: {result['plotext_raw_baseline']['frame_ms']} ms per frame")
    print(f"  baseline / TUI frame cost = {result['baseline_over_frame_cost']}x")
    verdict = "met" if result["goal_met"] else "NOT met"
    print(f"  goal p95 <= {GOAL_FRAME_MS} ms per frame: {verdict}")
    print(
        f"  other processes kept {cores(result['open_other_cores'])} / {cores(result['frame_other_cores'])} / "
        f"{cores(result['baseline_other_cores'])} cores busy (open / frames / baseline)"
    )


if __name__ == "__main__":
    main()
