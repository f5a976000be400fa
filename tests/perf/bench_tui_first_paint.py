"""Benchmark: time from launching the TUI in a real terminal to the runs table painted.

    python tests/perf/bench_tui_first_paint.py [--repeats 10] [--quiet-wait 20] [--json]

A copy of sessions/bd6 (four runs, bd6.8d in production) in a short /tmp path. Each round runs,
in a shuffled order, each launch in a fresh tmux session of 200x50 (tests/perf/tui_terminal.py):

- ``warm``: ``python -m tui DIR`` with the campaign's engine already running;
- ``cold``: the same with no engine: the TUI starts it (the first launch of a day);
- ``bare``: the baseline, a minimal Textual app that paints one line, launched the same way.

The clock runs from just before ``tmux new-session`` until ``capture-pane`` (polled every 5 ms)
shows ``★ bd6.8d`` and ``bd6.8d2`` (the bare app: its one line). tmux's own start is in every
figure, so the ratio to ``bare`` is the TUI's own cost. Goal: painted within 1.5 s (DESIGN.md).
Medians and minimums in ms; how many cores other processes kept busy meanwhile (machine_load).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine_load import OtherLoad, wait_for_quiet  # noqa: E402
from tui_terminal import BARE_MARK, HEIGHT, REPO, WIDTH, Terminal, bare_app_script, python  # noqa: E402

GOAL_S = 1.5
RUN_MARKS = ("★ bd6.8d", "bd6.8d2")


def tunedeck(*args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI (the venv's ``tunedeck`` script)."""
    return subprocess.run([str(Path(python()).parent / "tunedeck"), *args], capture_output=True, text=True, check=False)


def copy_bd6() -> Path:
    root = Path(tempfile.mkdtemp(prefix="td-fp-", dir="/tmp")) / "bd6"
    shutil.copytree(REPO / "sessions" / "bd6", root, ignore=shutil.ignore_patterns(".tunedeck"))
    return root


def one_launch(terminal: Terminal, kind: str, campaign: Path, bare: Path, quiet_wait: float) -> dict[str, Any]:
    """Launch once and time the first paint of what ``kind`` shows."""
    if kind == "cold":
        tunedeck("engine", "stop", "--campaign", str(campaign))
    elif kind == "warm":
        tunedeck("engine", "start", "--campaign", str(campaign))
    argv = [python(), str(bare)] if kind == "bare" else [python(), "-m", "tui", str(campaign)]
    marks = (BARE_MARK,) if kind == "bare" else RUN_MARKS
    wait_for_quiet(quiet_wait)
    load = OtherLoad()
    load.start()
    started = time.perf_counter()
    session = terminal.launch(argv)
    painted = terminal.wait_for(session, marks, timeout=60)
    cores = load.cores()
    if painted is None:
        screen = terminal.capture(session)
        terminal.kill(session)
        raise SystemExit(f"{kind}: not painted within 60 s; the screen showed:\n{screen}")
    terminal.kill(session)
    return {"kind": kind, "ms": round(1000 * (painted - started), 1), "other_cores": cores}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("warm", "cold", "bare"):
        times = [r["ms"] for r in runs if r["kind"] == kind]
        out[kind] = {"median_ms": round(statistics.median(times), 1), "min_ms": min(times), "runs": len(times)}
    for kind in ("warm", "cold"):
        out[f"{kind}_over_bare"] = round(out[kind]["median_ms"] / out["bare"]["median_ms"], 2)
        out[f"{kind}_goal_met"] = out[kind]["median_ms"] <= GOAL_S * 1000
    loads = [r["other_cores"] for r in runs if r["other_cores"] is not None]
    out["other_cores_median"] = round(statistics.median(loads), 2) if loads else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quiet-wait", type=float, default=20.0, help="seconds to wait for a quiet machine")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    campaign, bare, terminal = copy_bd6(), bare_app_script(), Terminal()
    runs: list[dict[str, Any]] = []
    try:
        for kind in ("warm", "bare"):  # untimed warm-ups: the bench cache built, files in the page cache
            one_launch(terminal, kind, campaign, bare, 0)
        for round_index in range(args.repeats):
            kinds = ["warm", "cold", "bare"]
            random.shuffle(kinds)
            for kind in kinds:
                runs.append(one_launch(terminal, kind, campaign, bare, args.quiet_wait) | {"round": round_index})
                print(f"round {round_index}: {kind} {runs[-1]['ms']} ms", file=sys.stderr)
    finally:
        terminal.close()
        tunedeck("engine", "stop", "--campaign", str(campaign))
        shutil.rmtree(campaign.parent, ignore_errors=True)
        shutil.rmtree(bare.parent, ignore_errors=True)
    summary = summarise(runs)
    if args.json:
        print(json.dumps({"summary": summary, "runs": runs}))
        return
    print(f"first paint at {WIDTH}x{HEIGHT} in tmux ({args.repeats} rounds; medians, min in brackets):")
    for kind, label in (("warm", "engine running"), ("cold", "TUI starts the engine"), ("bare", "bare Textual app")):
        figures = summary[kind]
        print(f"  {label:<22} {figures['median_ms']:7.1f} ms  [{figures['min_ms']:.1f}]")
    for kind in ("warm", "cold"):
        verdict = "met" if summary[f"{kind}_goal_met"] else "NOT met"
        print(f"  {kind} / bare = {summary[f'{kind}_over_bare']}x; goal {GOAL_S} s {verdict}")
    print(f"  other processes kept {summary['other_cores_median']} cores busy (median)")


if __name__ == "__main__":
    main()
