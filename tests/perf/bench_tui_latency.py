"""Benchmark: latency from a metric line written to runs/<run>/metrics.jsonl to that point drawn on the Monitor.

    python tests/perf/bench_tui_latency.py [--fast-lines 200] [--slow-lines 15] [--json]

Against the real engine process on its Unix socket (started as ``tunedeck`` does; the campaign in
a short /tmp path, one watch rule that never fires, the run made to look running by a stand-in
worker process: tests/perf/bench_service.py's set-up). Three processes take part:

- a **writer** process appends lines as a worker does (``JsonlWriter``: one whole line + flush),
  each stamped with ``time.perf_counter()`` just before its write, at 20 lines/s and then at one
  line every 2 s, on a drift-free schedule;
- the **TUI** (this process): the real ``TunedeckApp`` under ``run_test`` (headless, 200x50) on the
  socket, following the campaign stream, its Monitor open on the run. A point counts as drawn when
  a ``MetricChart`` paints (``render``, timed by tests/perf/tui_probe.py) data whose newest step is
  that line's step or later;
- the **baseline**: a raw SSE client of the engine's ``/stream`` (httpx-sse, in its own process),
  which notes when each line arrives. Its latency is what the engine and the socket cost; the TUI's
  figure over it is the TUI's own cost (stream parsing, messages, the 6 Hz redraw tick, the paint).

CLOCK_MONOTONIC is one clock for every process on Linux, so stamps compare across them.
p50 / p95 / max in ms per rate; goal p95 <= 100 ms. Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PERF = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(PERF))

from bench_service import STAND_IN, add_run, make_campaign, percentiles, running_engine, stream_cursor  # noqa: E402
from machine_load import OtherLoad, wait_for_quiet  # noqa: E402
from tui_probe import DrawTimer, all_drawn, drawn_last_step  # noqa: E402

from engine.store.campaign import Campaign, engine_paths  # noqa: E402
from tui.app import TunedeckApp  # noqa: E402
from tui.client import EngineTarget  # noqa: E402
from tui.widgets.metric_chart import MetricChart  # noqa: E402

SIZE = (200, 50)
GOAL_P95_MS = 100.0
HISTORY = 200
WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bench_service import write_lines
write_lines(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
"""
SSE_CLIENT = """
import json, sys, time
import httpx
from httpx_sse import connect_sse
transport = httpx.HTTPTransport(uds=sys.argv[1])
last = int(sys.argv[3])
with httpx.Client(transport=transport, base_url="http://engine", timeout=httpx.Timeout(10.0, read=60.0)) as http:
    with connect_sse(http, "GET", "/stream", headers={"Last-Event-ID": sys.argv[2]}) as source:
        print("connected", flush=True)
        for event in source.iter_sse():
            received = time.perf_counter()
            if event.event == "metric":
                step = json.loads(event.data)["data"].get("step", 0)
                print(json.dumps({"step": step, "received": received}), flush=True)
                if step >= last:
                    break
"""


class DrawLog:
    """When each step was first painted on a chart."""

    def __init__(self) -> None:
        self.painted: dict[int, float] = {}
        self.newest = 0
        self.fed: dict[int, float] = {}  # step -> when the Monitor's feed_metrics got it (DrawTimer.fed)

    def on_render(self, chart: MetricChart, done: float) -> None:
        step = drawn_last_step(chart)
        if step is not None and step > self.newest:
            for newly in range(self.newest + 1, step + 1):
                self.painted[newly] = done
            self.newest = step


def write_times(metrics: Path) -> dict[int, float]:
    """step -> the writer's stamp, from the file (the timed lines carry "t")."""
    stamps = {}
    for line in metrics.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "t" in record:
            stamps[record["step"]] = record["t"]
    return stamps


async def scenario(
    pilot: Any, socket: Path, run_dir: Path, draws: DrawLog, first: int, lines: int, rate: float
) -> dict[str, Any]:
    """Write ``lines`` at ``rate`` Hz; the TUI's and the raw stream's latency per line."""
    last = first + lines - 1
    sse_argv = [sys.executable, "-c", SSE_CLIENT, str(socket), stream_cursor_campaign(run_dir), str(last)]
    sse = await asyncio.to_thread(subprocess.Popen, sse_argv, stdout=subprocess.PIPE, text=True)
    assert sse.stdout is not None
    await asyncio.to_thread(sse.stdout.readline)  # "connected"
    await pilot.pause(0.5)
    load = OtherLoad()
    load.start()
    writer = [
        sys.executable,
        "-c",
        WRITER,
        str(PERF),
        str(run_dir / "metrics.jsonl"),
        str(first),
        str(lines),
        str(rate),
    ]
    await asyncio.to_thread(subprocess.run, writer, check=True)
    deadline = time.perf_counter() + 10
    while draws.newest < last and time.perf_counter() < deadline:
        await pilot.pause(0.01)
    cores = load.cores()
    out, _ = await asyncio.to_thread(sse.communicate, None, 30)
    received = {r["step"]: r["received"] for r in map(json.loads, out.splitlines())}
    figures = latencies(write_times(run_dir / "metrics.jsonl"), range(first, last + 1), draws, received)
    return {"rate_hz": rate, "lines": lines, **figures, "other_cores": cores}


def latencies(stamps: dict[int, float], steps: range, draws: DrawLog, received: dict[int, float]) -> dict[str, Any]:
    """Percentiles of write -> drawn, write -> feed_metrics and write -> raw SSE, over ``steps``."""

    def after_write(seen: dict[int, float]) -> list[float]:
        return [1000 * (seen[step] - stamps[step]) for step in steps if step in seen]

    tui, raw = percentiles(after_write(draws.painted)), percentiles(after_write(received))
    return {
        "tui": tui,
        "tui_stream_to_monitor": percentiles(after_write(draws.fed)),
        "raw_sse": raw,
        "tui_over_sse_p95": round(tui["p95"] / raw["p95"], 1) if tui["p95"] and raw["p95"] else None,
        "tui_missed": len(steps) - tui["n"],
    }


def stream_cursor_campaign(run_dir: Path) -> str:
    """The campaign stream's Last-Event-ID at the run's current file ends (one run in the campaign)."""
    return f"{run_dir.name}:{stream_cursor(run_dir)}"


async def measure_tui(campaign: Campaign, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The TUI on the running engine, its Monitor on ``bench``; both scenarios."""
    draws = DrawLog()
    timer = DrawTimer(on_render=draws.on_render).install()
    draws.fed = timer.fed
    run_dir = campaign.run("bench").root
    results = []
    try:
        app = TunedeckApp(EngineTarget(campaign=campaign.root), open_run="bench")
        async with app.run_test(size=SIZE) as pilot:
            while not (app.connection.connected and all_drawn(app, ("loss",)) and draws.newest >= HISTORY):
                await pilot.pause(0.05)
            socket = engine_paths(campaign.root).socket
            first = HISTORY + 1
            for lines, rate in ((args.fast_lines, 20.0), (args.slow_lines, 0.5)):
                await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
                results.append(await scenario(pilot, socket, run_dir, draws, first, lines, rate))
                first += lines
    finally:
        timer.uninstall()
    return results


def measure(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="td-lat-", dir="/tmp"))
    campaign = make_campaign(root, "lat", watch_rule=True)
    run_dir = add_run(campaign, "bench", history=HISTORY, finished=False)
    stand_in = subprocess.Popen(STAND_IN, stdin=subprocess.DEVNULL, start_new_session=True)
    (run_dir / "worker.pid").write_text(json.dumps({"pid": stand_in.pid}) + "\n", encoding="utf-8")
    try:
        with running_engine(campaign):
            results = asyncio.run(measure_tui(campaign, args))
    finally:
        stand_in.kill()
        shutil.rmtree(root, ignore_errors=True)
    return {"scenarios": results, "goal_p95_ms": GOAL_P95_MS,
            "goal_met": all((r["tui"]["p95"] or 1e9) <= GOAL_P95_MS for r in results)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast-lines", type=int, default=200, help="lines written at 20 per second")
    parser.add_argument("--slow-lines", type=int, default=15, help="lines written one every 2 s")
    parser.add_argument("--quiet-wait", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args)
    if args.json:
        print(json.dumps(result))
        return
    print("metric line written -> drawn on the Monitor (real engine on its socket; ms):")
    for r in result["scenarios"]:
        tui, raw = r["tui"], r["raw_sse"]
        print(f"  {r['rate_hz']:g} lines/s, {r['lines']} lines:")
        print(f"    TUI drawn   p50 {tui['p50']}  p95 {tui['p95']}  max {tui['max']}  (not drawn: {r['tui_missed']})")
        fed = r["tui_stream_to_monitor"]
        print(f"      of which to the Monitor's feed_metrics: p50 {fed['p50']}  p95 {fed['p95']}  max {fed['max']}")
        print(f"    raw SSE     p50 {raw['p50']}  p95 {raw['p95']}  max {raw['max']}")
        cores = "?" if r["other_cores"] is None else f"{r['other_cores']:.2f}"
        print(f"    TUI / SSE at p95 = {r['tui_over_sse_p95']}x; other processes kept {cores} cores busy")
    print(f"  goal p95 <= {GOAL_P95_MS:g} ms: {'met' if result['goal_met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
