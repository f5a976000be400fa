"""Benchmark: the engine service's live-stream latency and its idle CPU.

    python tests/perf/bench_service.py [--lines N] [--rate HZ] [--idle-seconds S] [--json]

Starts the real engine process on a campaign in a short /tmp path (as ``tunedeck`` does, through
``EngineClient.ensure_running``) and measures:

1. Latency from a metric line being appended to ``runs/bench/metrics.jsonl`` (``JsonlWriter``,
   one whole line + flush, at a fixed rate) to an SSE client of ``/runs/bench/stream`` receiving it,
   with 1 client, then with 10 concurrent clients of which one is slow (it sleeps 50 ms per event,
   so at 50 Hz it falls ever further behind): the other nine must not be delayed. The run looks
   running to the engine: a ``started`` event and a stand-in worker process in ``worker.pid``. The
   campaign has one watch rule (it never fires), so the engine evaluates every line as it would in
   a real campaign. Each line carries ``time.perf_counter()`` taken just before the write; clients
   run in this process (threads), so both stamps come from one monotonic clock.
2. The engine's CPU when idle (no training, no client): utime + stime from /proc/<pid>/stat over
   ``--idle-seconds``, in percent of one core, for a campaign of 1 finished run and one of 50 (the
   file watcher stats every run's files on each poll).

Other processes on the machine disturb both figures, so the script also reports how many cores
they kept busy during each measurement (machine busy time from /proc/stat minus the engine's and
this process's). Linux only (/proc). Not a pytest test: CI does not run it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from engine.cli.client import EngineClient
from engine.service.core import WATCH_INTERVAL_S
from engine.service.stream import STREAM_FILES
from engine.store.campaign import Campaign, engine_paths
from engine.store.jsonl import JsonlWriter, write_jsonl_atomic

GOAL_P95_MS = 50.0
IDLE_REFERENCE_PCT = 1.0  # not a stated goal: what an idle background service usually costs
SLOW_SLEEP_S = 0.05
SLOW_TOLERANCE_MS = 5.0  # how much the others' p95 may move with a slow client before it counts as delay
CLIENT_TIMEOUT_S = 30.0
SETTLE_S = 2.0  # after the engine answers, before idle CPU is measured (startup work is not idle)
RUN_TOML = 'dataset = "datasets/train.jsonl"\n'
WATCH_RULE = '\n[[watch]]\nname = "grad-spike"\nmetric = "grad_norm"\nabove = 1e9\naction = "warn"\n'
# pid_is_worker accepts a live process whose command line names an engine module.
STAND_IN = [sys.executable, "-c", "import time; time.sleep(86400)", "engine.bench-stand-in-worker"]


# -- CPU accounting from /proc ---------------------------------------------------------------
def process_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (fields 14 and 15 of /proc/<pid>/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (user..steal, less idle and iowait)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


class CpuWindow:
    """The engine's CPU, and the cores other processes kept busy, between ``__init__`` and ``read()``."""

    def __init__(self, engine_pid: int) -> None:
        self.pid = engine_pid
        self.wall = time.perf_counter()
        self.engine = process_cpu_seconds(engine_pid)
        self.ours = time.process_time()
        self.machine = machine_busy_seconds()

    def read(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall
        engine = process_cpu_seconds(self.pid) - self.engine
        ours = time.process_time() - self.ours
        others = machine_busy_seconds() - self.machine - engine - ours
        return {
            "seconds": round(wall, 2),
            "engine_cpu_s": round(engine, 3),
            "engine_pct_of_core": round(100 * engine / wall, 2),
            "other_processes_cores": round(max(others, 0.0) / wall, 2),
        }


# -- campaigns and the engine -----------------------------------------------------------------
def make_campaign(root: Path, name: str, *, watch_rule: bool = False) -> Campaign:
    """A campaign with a small data set, in a short path (a Unix socket path has 107 bytes at most)."""
    campaign = Campaign.create(root / name, name)
    if watch_rule:
        toml = campaign.root / "campaign.toml"
        toml.write_text(toml.read_text(encoding="utf-8") + WATCH_RULE, encoding="utf-8")
        campaign = Campaign.open(campaign.root)
    rows = [{"prompt": f"reverse: {w}", "completion": w[::-1]} for w in ("tune", "deck", "bench")]
    write_jsonl_atomic(campaign.root / "datasets" / "train.jsonl", rows)
    return campaign


def add_run(campaign: Campaign, name: str, *, history: int = 0, finished: bool = True) -> Path:
    """runs/<name>/ with run.toml, ``history`` metric lines and a started (and finished) event."""
    paths = campaign.run(name)
    paths.root.mkdir(parents=True)
    paths.run_toml.write_text(RUN_TOML, encoding="utf-8")
    write_jsonl_atomic(paths.metrics, [metric_line(step, None) for step in range(1, history + 1)])
    events = [{"ts": time.time(), "event": "started", "max_steps": history or 1000}]
    if finished:
        events.append({"ts": time.time(), "event": "finished", "step": history})
    write_jsonl_atomic(paths.events, events)
    return paths.root


def metric_line(step: int, stamp: float | None) -> dict[str, Any]:
    """A line shaped like an HF Trainer log (about 130 bytes), with the write stamp when timed."""
    line: dict[str, Any] = {"step": step, "loss": 2.0 / math.sqrt(step), "grad_norm": 1.5, "learning_rate": 5e-5}
    line["epoch"] = round(step / 1000, 4)
    if stamp is not None:
        line["t"] = stamp
    return line


@contextmanager
def running_engine(campaign: Campaign) -> Iterator[EngineClient]:
    """The real engine process for ``campaign``, stopped on the way out."""
    client = EngineClient(campaign)
    try:
        client.ensure_running()
        yield client
    finally:
        with suppress(Exception):
            client.stop_engine()
        client.close()


def engine_pid(client: EngineClient) -> int:
    health = client.health()
    if health is None:
        raise RuntimeError("the engine stopped answering")
    return int(health["pid"])


# -- latency ------------------------------------------------------------------------------------
@dataclass
class StreamClient:
    """One SSE client in a thread: records receive - write for each timed metric line it gets."""

    socket: Path
    cursor: str
    last_step: int
    slow: bool = False
    latencies_ms: list[float] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    error: str | None = None

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        transport = httpx.HTTPTransport(uds=str(self.socket))
        timeout = httpx.Timeout(10.0, read=CLIENT_TIMEOUT_S)
        try:
            with (
                httpx.Client(transport=transport, base_url="http://engine", timeout=timeout) as http,
                connect_sse(http, "GET", "/runs/bench/stream", headers={"Last-Event-ID": self.cursor}) as source,
            ):
                self.connected.set()
                for event in source.iter_sse():
                    received = time.perf_counter()
                    if event.event == "metric":
                        record = json.loads(event.data)
                        if "t" in record:
                            self.latencies_ms.append(1000 * (received - record["t"]))
                        if record.get("step", 0) >= self.last_step:
                            break
                    if self.stop.is_set():
                        break
                    if self.slow:
                        time.sleep(SLOW_SLEEP_S)
        except (httpx.HTTPError, ValueError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.connected.set()
            self.done.set()


def stream_cursor(run_dir: Path) -> str:
    """The SSE id of the run's current end (byte size of each stream file), to start from there."""
    sizes = []
    for _, name in STREAM_FILES:
        path = run_dir / name
        sizes.append(path.stat().st_size if path.exists() else 0)
    return ".".join(str(size) for size in sizes)


def write_lines(path: Path, first_step: int, count: int, rate: float) -> float:
    """Append ``count`` metric lines at ``rate`` Hz on a drift-free schedule; returns the worst lateness (ms)."""
    worst = 0.0
    with JsonlWriter(path) as writer:
        start = time.perf_counter()
        for index in range(count):
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            now = time.perf_counter()
            worst = max(worst, now - due)
            writer.write(metric_line(first_step + index, now))
    return 1000 * worst


def latency_scenario(
    client: EngineClient, run_dir: Path, *, clients: int, slow: int, lines: int, rate: float, first_step: int
) -> dict[str, Any]:
    """Connect ``clients`` SSE clients (the last ``slow`` of them slow), write ``lines``, collect latencies."""
    last_step = first_step + lines - 1
    cursor = stream_cursor(run_dir)
    readers = [
        StreamClient(engine_paths(client.campaign.root).socket, cursor, last_step, slow=i >= clients - slow)
        for i in range(clients)
    ]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.connected.wait(CLIENT_TIMEOUT_S)
    time.sleep(0.5)  # every stream subscribed and caught up before the first timed line
    cpu = CpuWindow(engine_pid(client))
    worst_lateness = write_lines(run_dir / "metrics.jsonl", first_step, lines, rate)
    normal = [r for r in readers if not r.slow]
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    for reader in normal:
        reader.done.wait(max(0.0, deadline - time.monotonic()))
    window = cpu.read()
    for reader in readers:
        reader.stop.set()
    result: dict[str, Any] = {
        "clients": clients,
        "slow_clients": slow,
        "lines": lines,
        "rate_hz": rate,
        "writer_worst_lateness_ms": round(worst_lateness, 2),
        "others": percentiles([ms for r in normal for ms in r.latencies_ms]),
        "others_worst_client_p95_ms": max((percentiles(r.latencies_ms)["p95"] or 0.0) for r in normal),
        "missing_lines": sum(lines - len(r.latencies_ms) for r in normal),
        "errors": [r.error for r in readers if r.error],
        "engine_cpu": window,
    }
    if slow:
        behind = [r for r in readers if r.slow]
        result["slow"] = {
            **percentiles([ms for r in behind for ms in r.latencies_ms]),
            "sleep_per_event_ms": SLOW_SLEEP_S * 1000,
        }
    return result


def percentiles(values: list[float]) -> dict[str, Any]:
    """Nearest-rank p50/p95/p99 and max, in ms."""
    ordered = sorted(values)

    def rank(q: float) -> float | None:
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 2) if ordered else None

    return {"n": len(ordered), "p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": rank(1.0)}


def measure_latency(root: Path, lines: int, rate: float, progress: Any) -> dict[str, Any]:
    campaign = make_campaign(root, "lat", watch_rule=True)
    run_dir = add_run(campaign, "bench", finished=False)
    stand_in = subprocess.Popen(STAND_IN, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        (run_dir / "worker.pid").write_text(json.dumps({"pid": stand_in.pid}) + "\n", encoding="utf-8")
        with running_engine(campaign) as client:
            state = client.status("bench")["state"]
            gpu = client.gpu()
            progress(f"latency: 1 client, {lines} lines at {rate:g} Hz (run state: {state})")
            one = latency_scenario(client, run_dir, clients=1, slow=0, lines=lines, rate=rate, first_step=1)
            progress(f"latency: 10 clients, none slow, {lines} lines at {rate:g} Hz")
            ten = latency_scenario(client, run_dir, clients=10, slow=0, lines=lines, rate=rate, first_step=lines + 1)
            progress(f"latency: 10 clients, 1 slow, {lines} lines at {rate:g} Hz")
            slow = latency_scenario(
                client, run_dir, clients=10, slow=1, lines=lines, rate=rate, first_step=2 * lines + 1
            )
    finally:
        stand_in.send_signal(signal.SIGKILL)
        stand_in.wait()
    return {"run_state": state, "gpu": gpu, "one_client": one, "ten_clients": ten, "ten_clients_one_slow": slow}


# -- idle CPU -------------------------------------------------------------------------------------
def measure_idle(root: Path, runs: int, seconds: float, progress: Any) -> dict[str, Any]:
    campaign = make_campaign(root, f"idle{runs}")
    for index in range(runs):
        add_run(campaign, f"run-{index:02d}", history=200)
    with running_engine(campaign) as client:
        time.sleep(SETTLE_S)
        progress(f"idle CPU: {runs} run(s), {seconds:g} s")
        window = CpuWindow(engine_pid(client))
        time.sleep(seconds)
        return {"runs": runs, **window.read()}


# -- report -----------------------------------------------------------------------------------------
def describe_latency(label: str, figures: dict[str, Any]) -> str:
    return (
        f"  {label:<34} p50 {figures['p50']} ms  p95 {figures['p95']} ms  p99 {figures['p99']} ms  "
        f"max {figures['max']} ms  (n={figures['n']})"
    )


def report(result: dict[str, Any]) -> str:
    latency = result["latency"]
    one, ten, slow = latency["one_client"], latency["ten_clients"], latency["ten_clients_one_slow"]
    gpu = latency["gpu"]
    scenarios = (one, ten, slow)
    lines = [
        f"engine service benchmark ({os.cpu_count()} CPUs, file watcher polls every {WATCH_INTERVAL_S * 1000:g} ms)",
        f"GPU sampler: {'on' if gpu['available'] else 'off'}; GET /gpu: available={gpu['available']}, "
        f"reason={gpu['reason']!r}",
        f"latency, metric line written -> SSE event received ({one['lines']} lines at {one['rate_hz']:g} Hz per "
        f"scenario, run state {latency['run_state']!r}, clock: time.perf_counter, one process)",
        describe_latency("1 client", one["others"]),
        describe_latency("10 clients, none slow", ten["others"]),
        describe_latency("10 clients, 1 slow: the other 9", slow["others"]),
        f"  {'':<34} worst single client's p95 {slow['others_worst_client_p95_ms']} ms",
        describe_latency("10 clients, 1 slow: the slow one", slow["slow"]),
        f"  (the slow client sleeps {SLOW_SLEEP_S * 1000:g} ms per event, so it falls behind; it is dropped "
        "when the others have every line)",
        f"  lines missed by normal clients: {[s['missing_lines'] for s in scenarios]}; "
        f"writer lateness max {max(s['writer_worst_lateness_ms'] for s in scenarios)} ms",
        "  engine CPU while streaming: "
        + ", ".join(f"{s['engine_cpu']['engine_pct_of_core']}%" for s in scenarios)
        + " of a core; other processes kept "
        + " / ".join(f"{s['engine_cpu']['other_processes_cores']}" for s in scenarios)
        + " cores busy",
    ]
    lines += [f"  client error: {error}" for s in scenarios for error in s["errors"]]
    lines.append("idle engine CPU (no training, no clients):")
    for idle in result["idle"]:
        lines.append(
            f"  {idle['runs']:>3} run(s): {idle['engine_pct_of_core']}% of one core "
            f"({idle['engine_cpu_s']} CPU s in {idle['seconds']} s; other processes kept "
            f"{idle['other_processes_cores']} cores busy)"
        )
    lines.append("goals:")
    for label, scenario in (("1 client", one), ("10 clients", ten), ("10 clients with 1 slow (the other 9)", slow)):
        p95 = scenario["others"]["p95"]
        verdict = "met" if p95 is not None and p95 <= GOAL_P95_MS else "NOT met"
        lines.append(f"  p95 <= {GOAL_P95_MS:g} ms, {label}: {p95} ms - {verdict}")
    delta = (slow["others"]["p95"] or 0) - (ten["others"]["p95"] or 0)
    verdict = "met" if slow["others"]["p95"] is not None and delta <= SLOW_TOLERANCE_MS else "NOT met"
    lines.append(
        f"  a slow client does not delay the others: their p95 is {delta:+.2f} ms from 10 clients with none slow "
        f"(tolerance {SLOW_TOLERANCE_MS:g} ms of timing noise) - {verdict}"
    )
    for idle in result["idle"]:
        verdict = "within" if idle["engine_pct_of_core"] <= IDLE_REFERENCE_PCT else "ABOVE"
        lines.append(
            f"  idle CPU, {idle['runs']} run(s): {idle['engine_pct_of_core']}% - {verdict} the "
            f"{IDLE_REFERENCE_PCT:g}% reference (no goal is set for it)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500, help="metric lines written per scenario (default 500)")
    parser.add_argument("--rate", type=float, default=50.0, help="lines per second (default 50)")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="idle CPU window (default 20)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)

    def progress(message: str) -> None:
        print(f"[bench_service] {message}", file=sys.stderr, flush=True)

    root = Path(tempfile.mkdtemp(prefix="td-bench-", dir="/tmp"))
    try:
        result = {
            "latency": measure_latency(root, args.lines, args.rate, progress),
            "idle": [measure_idle(root, runs, args.idle_seconds, progress) for runs in (1, 50)],
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
