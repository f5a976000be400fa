"""Benchmark: the TUI process's resident memory with a 1,000,000-step run open on the Monitor.

    python tests/perf/bench_tui_rss.py [--steps 1000000] [--repeats 3] [--json]

The campaign of tests/perf/bench_tui_monitor_redraw.py (run ``long``: ``--steps`` steps, one
grad_norm spike of 50) served by the real engine process on its Unix socket. Each repeat launches
``python -m tui DIR --run long`` in a real terminal (tmux, 200x50: tests/perf/tui_terminal.py) and
waits until a chart's caption shows the newest step (``@ 1000000``): that time is the open time in
a real terminal, from launch (interpreter start and imports included). Then the TUI's RSS
(psutil when installed, else /proc/<pid>/status VmRSS) is sampled for ``SETTLE_S`` seconds and the
highest sample kept. Baseline: a bare Textual app painting one line, launched the same way. The
engine's RSS is printed too (it is another process: it holds the column index, the TUI does not).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_service import running_engine  # noqa: E402
from bench_tui_monitor_redraw import make_campaign  # noqa: E402
from machine_load import wait_for_quiet  # noqa: E402
from tui_terminal import BARE_MARK, Terminal, bare_app_script, python, rss_kib  # noqa: E402

SETTLE_S = 3.0


def launch_and_sample(terminal: Terminal, argv: list[str], marks: tuple[str, ...]) -> dict[str, Any]:
    """Launch in tmux, time until ``marks`` are on screen, then the highest RSS over SETTLE_S."""
    started = time.perf_counter()
    session = terminal.launch(argv)
    painted = terminal.wait_for(session, marks, timeout=120)
    if painted is None:
        screen = terminal.capture(session)
        terminal.kill(session)
        raise SystemExit(f"not painted within 120 s: {' '.join(argv)}\n{screen}")
    pid = terminal.pid(session)
    samples = []
    deadline = time.perf_counter() + SETTLE_S
    while time.perf_counter() < deadline:
        kib = rss_kib(pid)
        if kib is not None:
            samples.append(kib)
        time.sleep(0.1)
    terminal.kill(session)
    return {"open_ms": round(1000 * (painted - started), 1), "rss_mib": round(max(samples) / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quiet-wait", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    campaign = make_campaign(args.steps)
    bare, terminal = bare_app_script(), Terminal()
    tui_runs, bare_runs = [], []
    try:
        with running_engine(campaign) as client:
            tui = [python(), "-m", "tui", str(campaign.root), "--run", "long"]
            launch_and_sample(terminal, tui, (f"@ {args.steps}",))  # untimed: the engine builds its index
            for _ in range(args.repeats):
                wait_for_quiet(args.quiet_wait)
                tui_runs.append(launch_and_sample(terminal, tui, (f"@ {args.steps}",)))
                wait_for_quiet(args.quiet_wait)
                bare_runs.append(launch_and_sample(terminal, [python(), str(bare)], (BARE_MARK,)))
            health = client.health()
            engine_rss = rss_kib(health.pid) if health is not None else None
    finally:
        terminal.close()
        shutil.rmtree(campaign.root.parent, ignore_errors=True)
        shutil.rmtree(bare.parent, ignore_errors=True)
    result = {
        "steps": args.steps,
        "tui_rss_mib": statistics.median(r["rss_mib"] for r in tui_runs),
        "bare_rss_mib": statistics.median(r["rss_mib"] for r in bare_runs),
        "tui_open_in_terminal_ms": statistics.median(r["open_ms"] for r in tui_runs),
        "bare_paint_ms": statistics.median(r["open_ms"] for r in bare_runs),
        "engine_rss_mib": round(engine_rss / 1024, 1) if engine_rss else None,
        "runs": {"tui": tui_runs, "bare": bare_runs},
    }
    result["tui_over_bare_rss"] = round(result["tui_rss_mib"] / result["bare_rss_mib"], 2)
    if args.json:
        print(json.dumps(result))
        return
    print(f"TUI with a {args.steps:,}-step run open on the Monitor (real engine on its socket, tmux 200x50):")
    print(f"  TUI RSS {result['tui_rss_mib']} MiB; bare Textual app {result['bare_rss_mib']} MiB "
          f"(ratio {result['tui_over_bare_rss']}x); engine {result['engine_rss_mib']} MiB")  # fmt: skip
    print(f"  launch to the run's charts on screen: {result['tui_open_in_terminal_ms']} ms "
          f"(bare app's first paint: {result['bare_paint_ms']} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
