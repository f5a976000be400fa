"""One engine per campaign, whoever starts it, however many at once; pids are identities, not numbers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine.demo.reverse_task import reverse_rows
from engine.runs.liveness import is_alive, process_start_time
from engine.service.ownership import EngineAlreadyRunning, EngineLock
from engine.store.campaign import Campaign, engine_paths, record_event
from tests.helpers import FAST_RUN, REPO, processes_running, tunedeck, write_jsonl

REAPER = "engine.runs.reaper"  # its command line names the worker it runs: not a second worker


@pytest.fixture
def short_campaign(tiny_model: Path) -> Iterator[Campaign]:
    """A campaign in a short path (Unix socket paths are limited to 107 bytes); nothing left running."""
    root = Path(tempfile.mkdtemp(prefix="td-", dir="/tmp"))
    camp = Campaign.create(root / "c", "ownership tests", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "train.jsonl", reverse_rows(400, seed=1))
    yield camp
    tunedeck("engine", "stop", "--campaign", str(camp.root))
    for pid in processes_running(str(camp.root)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


def test_the_lock_is_exclusive_and_dies_with_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "engine.lock"
    first = EngineLock(path)
    first.acquire()
    first.acquire()  # idempotent for its holder
    with pytest.raises(EngineAlreadyRunning, match=rf"pid {os.getpid()}"):
        EngineLock(path).acquire()
    first.release()
    EngineLock(path).acquire()  # released: free again (and this one is dropped when garbage)

    # A holder killed with SIGKILL holds nothing: the kernel drops a flock with its process.
    code = (
        "import pathlib, sys, time\nfrom engine.service.ownership import EngineLock\n"
        "EngineLock(pathlib.Path(sys.argv[1])).acquire()\nprint('held', flush=True)\ntime.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "other.lock")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(EngineAlreadyRunning):
        EngineLock(tmp_path / "other.lock").acquire()
    holder.kill()
    holder.wait()
    lock = EngineLock(tmp_path / "other.lock")
    lock.acquire()
    assert lock.held


@pytest.mark.slow  # six engine processes and a real training worker
def test_six_engine_starts_at_once_leave_one_engine_that_launches_a_queued_run_once(
    short_campaign: Campaign,
) -> None:
    """The reproduction from the reliability issue: six workers once wrote one metrics.jsonl."""
    campaign = short_campaign
    run_dir = campaign.run("q1").root
    run_dir.mkdir(parents=True)
    (run_dir / "run.toml").write_text(FAST_RUN.format(max_steps=60, logging_steps=1, save_steps=30))
    # What `tunedeck run` leaves behind when the engine is gone before launching it: a queued run.
    record_event(campaign.run("q1").events, "queued", resume=False)

    def start() -> subprocess.CompletedProcess[str]:
        return tunedeck("engine", "start", "--campaign", str(campaign.root), "--json", timeout=120)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: start(), range(6)))
    for done in results:
        assert done.returncode == 0, done.stderr
    pids = {json.loads(done.stdout)["pid"] for done in results}
    assert len(pids) == 1, f"several engines answered: {pids}"
    time.sleep(1.0)  # losers exit as soon as they meet the lock
    engines = processes_running("engine.service", str(campaign.root), unless=REAPER)
    assert engines == [pids.pop()], f"engine processes alive: {engines}"

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        last = [json.loads(x) for x in campaign.run("q1").events.read_text().splitlines()][-1]
        if last["event"] in ("finished", "failed"):
            break
        workers = processes_running("engine.worker", str(run_dir), unless=REAPER)
        assert len(workers) <= 1, f"the queued run was launched {len(workers)} times"
        time.sleep(0.2)
    assert last["event"] == "finished", last
    lines = campaign.run("q1").metrics.read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines if '"loss"' in line]
    assert steps == sorted(set(steps)), "two workers wrote one metrics.jsonl"
    started = [json.loads(x) for x in campaign.run("q1").events.read_text().splitlines()]
    assert sum(e["event"] == "started" for e in started) == 1

    stopped = tunedeck("engine", "stop", "--campaign", str(campaign.root), "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert processes_running("engine.service", str(campaign.root), unless=REAPER) == []


def test_a_second_engine_serve_is_refused_in_one_line(short_campaign: Campaign) -> None:
    first = tunedeck("engine", "start", "--campaign", str(short_campaign.root), "--json")
    assert first.returncode == 0, first.stderr
    pid = json.loads(first.stdout)["pid"]
    second = tunedeck("engine", "serve", "--campaign", str(short_campaign.root), timeout=60)
    assert second.returncode == 2
    assert second.stderr.strip().count("\n") == 0, second.stderr
    assert f"pid {pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert engine_paths(short_campaign.root).socket.exists()  # the loser removed nothing of the winner's


def test_a_recycled_pid_is_not_our_worker(tmp_path: Path) -> None:
    # A process whose command line even looks like ours: only its start time tells it apart.
    impostor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "engine.worker"])
    try:
        # Popen can return before the child's exec shows in /proc (its command line is the parent's till then).
        deadline = time.monotonic() + 10
        while b"engine.worker" not in Path(f"/proc/{impostor.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline, "the impostor never started"
            time.sleep(0.01)
        started = process_start_time(impostor.pid)
        assert started is not None
        assert is_alive(impostor.pid, started)
        assert not is_alive(impostor.pid, started - 1)  # the pid our record named was another process
        assert is_alive(impostor.pid)  # an old record without a start time: the command-line check
    finally:
        impostor.kill()
        impostor.wait()
    assert not is_alive(impostor.pid, started)
