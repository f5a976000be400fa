"""Benchmark: the timings unit tests used to assert, measured and printed instead.

    python tests/perf/bench_timings.py [--repeats K] [--no-engine] [--json]

Each figure was a bound in a unit test, where a busy machine made it fail for no fault of the
code; the tests keep what does not depend on load, and this script reports the rest:

1. ``mcnemar_exact(500_000, 499_000)``: seconds per call (the test asserted under 0.5 s).
2. ``run_program`` of an infinite loop with a 1 s time limit: the wall time until it returns
   (the test asserted at least 1 s, and under 4 s; it keeps the first).
3. ``run_programs`` of 6 programs, each busy for 0.4 s, with ``max_workers=64``: how many ran at
   once at most, against the CPU count (the test asserted at least 2 on a machine of 2 cores or
   more; it keeps "never more than the CPU count").
4. The engine, on a real run of the tiny model: seconds from ``kill -9`` of the worker to
   ``GET /runs/<run>`` answering ``failed`` (the test asserted under 2 s, polling through the CLI).
   The tiny model is built by a worker process into a temporary campaign in /tmp; a run takes
   about 10 s. ``--no-engine`` skips it.

Before each measurement the script waits up to ``--quiet-wait`` seconds for other processes to go
quiet, and reports how many cores they kept busy meanwhile (``machine_load``, Linux /proc/stat).
``--json`` prints every figure as one JSON object (progress goes to stderr). With the defaults it
takes about a minute on 2 CPU cores. Not a pytest test: CI does not run it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from machine_load import OtherLoad, wait_for_quiet

from engine.bench.sandbox import Program, run_program, run_programs
from engine.bench.stats import mcnemar_exact
from engine.demo.reverse_task import reverse_rows
from engine.runs.launch import python_module
from engine.store.campaign import Campaign, engine_paths
from engine.store.jsonl import write_jsonl_atomic

BUSY = (
    "import time\nstart = time.time()\nx = 0\nwhile time.time() - start < 0.4:\n    x += 1\nprint(start, time.time())"
)
RUN_TOML = 'dataset = "datasets/train.jsonl"\n[train]\nlearning_rate = 5e-3\nbatch_size = 16\nmax_steps = 5000\n'
Progress = Callable[[str], None]


def timed(action: Callable[[], object], repeats: int, quiet_wait: float) -> dict[str, Any]:
    """Seconds per call of ``action`` (median, min, max over ``repeats``) and the other load meanwhile."""
    seconds, others = [], []
    for _ in range(repeats):
        wait_for_quiet(quiet_wait)
        load = OtherLoad()
        load.start()
        began = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - began)
        others.append(load.cores())
    return {"seconds": seconds, **summary(seconds), "other_cores": others}


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def most_at_once() -> int:
    """The most of 6 busy programs that ran at the same moment."""
    results = run_programs([Program(BUSY, timeout_s=20.0) for _ in range(6)], max_workers=64)
    intervals = [tuple(float(v) for v in r.stdout.split()) for r in results]
    return max(sum(s <= t < e for s, e in intervals) for t, _ in intervals)


def measure_sandbox(repeats: int, quiet_wait: float, progress: Progress) -> dict[str, Any]:
    progress("mcnemar_exact on 1,000,000 discordant rows")
    mcnemar = timed(lambda: mcnemar_exact(500_000, 499_000), repeats, quiet_wait)
    progress("an infinite loop under a 1 s time limit")
    timeout = timed(lambda: run_program("while True:\n    pass\n", timeout_s=1.0), repeats, quiet_wait)
    progress("6 busy programs through run_programs")
    overlaps = []
    for _ in range(repeats):
        wait_for_quiet(quiet_wait)
        overlaps.append(most_at_once())
    return {
        "mcnemar_s": mcnemar,
        "timeout_wall_s": timeout,
        "overlap": {"most_at_once": overlaps, "cpus": os.cpu_count()},
    }


@contextmanager
def demo_campaign(progress: Progress) -> Iterator[Campaign]:
    """A campaign in a short /tmp path (socket paths are limited) on a freshly built tiny model."""
    root = Path(tempfile.mkdtemp(prefix="td-timings-", dir="/tmp"))
    try:
        progress("building the tiny model")
        model = root / "models" / "tiny-qwen2"
        subprocess.run(python_module("engine.worker.tinymodel", str(model)), check=True, capture_output=True)
        campaign = Campaign.create(root / "c", "timings", base=str(model))
        write_jsonl_atomic(campaign.root / "datasets" / "train.jsonl", reverse_rows(400, seed=1))
        yield campaign
    finally:
        subprocess.run(tunedeck("engine", "stop", "--campaign", str(root / "c")), capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def tunedeck(*args: str) -> list[str]:
    return [sys.executable, "-c", "from engine.cli.main import main; main()", *args]


def run_state(http: httpx.Client, run: str) -> dict[str, Any]:
    answer: dict[str, Any] = http.get(f"/runs/{run}").json()
    return answer


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


def kill_to_failed(campaign: Campaign, run: str, http: httpx.Client, quiet_wait: float) -> dict[str, Any]:
    """Queue a long run, wait for its first metric, kill -9 its worker, time until the engine says failed."""
    toml = campaign.root / f"{run}.toml"
    toml.write_text(RUN_TOML, encoding="utf-8")
    queue = tunedeck("run", str(toml), "--campaign", str(campaign.root), "--json")
    subprocess.run(queue, check=True, capture_output=True)
    pid = wait_until(lambda: run_state(http, run).get("pid"), 120, "the worker's pid")
    wait_until(lambda: campaign.run(run).metrics.exists(), 120, "training")
    wait_for_quiet(quiet_wait)
    load = OtherLoad()
    load.start()
    os.kill(pid, signal.SIGKILL)
    began = time.perf_counter()
    wait_until(lambda: run_state(http, run)["state"] == "failed", 60, "the failed state")
    state_s = time.perf_counter() - began
    wait_until(lambda: '"failed"' in campaign.run(run).events.read_text(encoding="utf-8"), 60, "the failed event")
    return {"seconds": state_s, "event_seconds": time.perf_counter() - began, "other_cores": load.cores()}


def measure_engine(repeats: int, quiet_wait: float, progress: Progress) -> dict[str, Any]:
    with demo_campaign(progress) as campaign:
        subprocess.run(tunedeck("engine", "start", "--campaign", str(campaign.root)), check=True, capture_output=True)
        transport = httpx.HTTPTransport(uds=str(engine_paths(campaign.root).socket))
        kills = []
        with httpx.Client(transport=transport, base_url="http://engine", timeout=30) as http:
            for index in range(repeats):
                progress(f"kill -9 of a training worker, {index + 1} of {repeats}")
                kills.append(kill_to_failed(campaign, f"doomed-{index}", http, quiet_wait))
        return {
            "kills": kills,
            **summary([k["seconds"] for k in kills]),
            "event": summary([k["event_seconds"] for k in kills]),
        }


def report(result: dict[str, Any]) -> str:
    sandbox = result["sandbox"]
    mc, to, ov = sandbox["mcnemar_s"], sandbox["timeout_wall_s"], sandbox["overlap"]
    lines = [
        f"mcnemar_exact(500000, 499000): median {mc['median'] * 1000:.2f} ms, max {mc['max'] * 1000:.2f} ms"
        " (the unit test asserted < 500 ms)",
        f"infinite loop, 1 s limit: returned after median {to['median']:.2f} s, max {to['max']:.2f} s"
        " (the unit test asserted 1 s <= t < 4 s)",
        f"6 busy programs, max_workers=64: at most {max(ov['most_at_once'])} at once (each round: "
        f"{ov['most_at_once']}) on {ov['cpus']} CPUs (the unit test asserted >= 2 with 2+ CPUs)",
    ]
    engine = result.get("engine")
    if engine is not None:
        event = engine["event"]
        lines.append(
            f"kill -9 of a worker -> GET /runs/<run> says failed: median {engine['median'] * 1000:.0f} ms, max"
            f" {engine['max'] * 1000:.0f} ms; -> the failed event in events.jsonl: median {event['median'] * 1000:.0f}"
            f" ms, max {event['max'] * 1000:.0f} ms, over {len(engine['kills'])} kills (the unit test asserted"
            " < 2 s, polling through the CLI)"
        )
    others = [v for part in (mc, to) for v in part["other_cores"] if v is not None]
    if others:
        lines.append(f"other processes kept up to {max(others):.2f} cores busy during the timed calls")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="measurements of each figure (default 5)")
    parser.add_argument("--quiet-wait", type=float, default=20.0, help="seconds to wait for a quiet machine")
    parser.add_argument("--no-engine", action="store_true", help="skip the engine's kill -> failed figure")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)

    def progress(message: str) -> None:
        print(f"[bench_timings] {message}", file=sys.stderr, flush=True)

    result: dict[str, Any] = {"sandbox": measure_sandbox(args.repeats, args.quiet_wait, progress)}
    if not args.no_engine:
        result["engine"] = measure_engine(min(args.repeats, 3), args.quiet_wait, progress)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
