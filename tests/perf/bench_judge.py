"""Judging time of ``bench judge``: 36 prompts, a local judge answering in 50 ms, concurrency 8.

    .venv/bin/python tests/perf/bench_judge.py [--prompts 36] [--latency 0.05] [--concurrency 8] [--json]

Sends the prompts to tests/judge_server.py over real HTTP through ``engine.bench.judge.judge_tasks``
(the code ``bench judge`` runs after generation, judge log included) and times it, then times the
same judging with one request at a time: the sequential baseline. Goal: under 2 s at concurrency 8.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.bench.judge import Task, judge_tasks  # noqa: E402
from engine.bench.judge_rubric import load_rubric  # noqa: E402
from engine.bench.suite import parse_suite_row  # noqa: E402
from engine.store.config import JudgeConfig  # noqa: E402
from tests.judge_server import COMPONENTS, JudgeServer  # noqa: E402

GOAL_S = 2.0


def _tasks(prompts: int) -> list[Task]:
    tasks = []
    for index in range(prompts):
        record = {"task_id": f"p-{index:02d}", "prompt": f"Prompt {index}. case: ok score: 8", "expected": ""}
        row = parse_suite_row(record, default_bench="perf", path=Path("perf.jsonl"), line=index + 1)
        tasks.append(Task(row, 0, 0, "An answer of a few sentences. " * 20, 5.0))
    return tasks


def judge_once(url: str, tasks: list[Task], concurrency: int) -> tuple[float, int]:
    """Seconds to judge ``tasks`` from scratch, and how many were scored."""
    config = JudgeConfig(weights=dict.fromkeys(COMPONENTS, 1.0), base_url=url, model="perf", concurrency=concurrency)
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "judged.jsonl"
        rubric = load_rubric(Path(scratch), config)
        began = time.perf_counter()
        results, _ = asyncio.run(judge_tasks(config, None, rubric, tasks, log))
        seconds = time.perf_counter() - began
    return seconds, sum(r["error"] is None for r in results.values())


def main() -> None:
    """Print the judging time at the given concurrency and sequentially."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=36)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tasks = _tasks(args.prompts)
    with JudgeServer(latency_s=args.latency) as server:
        judge_once(server.url, tasks[:2], 2)  # warm-up: imports, first connection
        concurrent, scored = judge_once(server.url, tasks, args.concurrency)
        peak = server.max_in_flight
        sequential, _ = judge_once(server.url, tasks, 1)
    figures = {
        "prompts": args.prompts, "latency_s": args.latency, "concurrency": args.concurrency, "scored": scored,
        "judging_s": round(concurrent, 3), "sequential_s": round(sequential, 3),
        "speedup": round(sequential / concurrent, 2), "max_in_flight": peak, "goal_s": GOAL_S,
        "goal_met": concurrent < GOAL_S,
    }  # fmt: skip
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{args.prompts} prompts, judge latency {args.latency * 1000:.0f} ms")
    print(f"  concurrency {args.concurrency}: {concurrent:.2f} s ({scored} scored, at most {peak} in flight)")
    print(f"  sequential:    {sequential:.2f} s ({sequential / concurrent:.1f}x slower)")
    print(f"  goal < {GOAL_S:.0f} s: {'met' if concurrent < GOAL_S else 'NOT met'}")


if __name__ == "__main__":
    main()
