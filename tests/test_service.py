"""The real engine service on a real Unix socket, with real workers: outliving, re-adopting, streaming."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from engine.demo.reverse_task import reverse_rows
from engine.store.campaign import Campaign, engine_paths
from engine.store.checkpoints import complete_checkpoints
from engine.store.jsonl import read_jsonl
from engine.store.metrics import read_metrics
from tests.helpers import REPO, stop_engine_and_workers, tunedeck, wait_for, write_jsonl, write_run_toml

WATCH_RULE = """
[[watch]]
name = "grad-spike"
metric = "grad_norm"
above = {threshold}
action = "stop"
"""


@pytest.fixture
def campaign(tiny_model: Path) -> Iterator[Campaign]:
    """A campaign in a short path (Unix socket paths are limited to 107 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="td-", dir="/tmp"))
    camp = Campaign.create(root / "c", "service tests", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "train.jsonl", reverse_rows(400, seed=1))
    yield camp
    stop_engine_and_workers(camp.root)
    shutil.rmtree(root, ignore_errors=True)


def write_run(campaign: Campaign, name: str, **settings: int) -> Path:
    return write_run_toml(campaign.root, name, **settings)


def cli(campaign: Campaign, *args: str) -> Any:
    done = tunedeck(*args, "--campaign", str(campaign.root), "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def client(campaign: Campaign) -> httpx.Client:
    socket_path = engine_paths(campaign.root).socket
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path)), base_url="http://engine", timeout=30)


def stream_until(
    campaign: Campaign, url: str, stop: Callable[[list[Any]], bool], last_id: str | None = None, timeout: float = 90.0
) -> tuple[list[Any], str | None]:
    """Read SSE events until ``stop(events)``; returns the events and the last id."""
    events: list[Any] = []
    headers = {"Last-Event-ID": last_id} if last_id else {}
    deadline = time.monotonic() + timeout
    with client(campaign) as http, connect_sse(http, "GET", url, headers=headers, timeout=timeout) as source:
        for event in source.iter_sse():
            events.append(event)
            last_id = event.id or last_id
            if stop(events) or time.monotonic() > deadline:
                break
    return events, last_id


def metric_steps(events: list[Any]) -> list[int]:
    return [json.loads(e.data)["step"] for e in events if e.event == "metric"]


def test_engine_start_status_stop_and_private_socket(campaign: Campaign) -> None:
    status = cli(campaign, "engine", "status")
    assert status == {"running": False, "pid": None, "socket": str(engine_paths(campaign.root).socket)}
    started = cli(campaign, "engine", "start")
    assert started["running"] is True
    folder = engine_paths(campaign.root).root
    assert folder.stat().st_mode & 0o777 == 0o700
    status = cli(campaign, "engine", "status")
    assert status["pid"] == started["pid"]
    assert status["gpu"]["available"] is False  # no GPU here: said plainly, nothing breaks
    assert "NVML" in status["gpu"]["reason"]
    human = tunedeck("engine", "start", "--campaign", str(campaign.root))
    assert "GPU stats unavailable" in human.stdout
    stopped = cli(campaign, "engine", "stop")
    assert stopped["running"] is False
    assert not engine_paths(campaign.root).socket.exists()


def test_another_local_user_cannot_connect(campaign: Campaign) -> None:
    """The 0700 folder stops another user before the socket (the probe becomes user nobody)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: only root can switch the probe process to another user")
    assert cli(campaign, "engine", "start")["running"] is True
    probe = (
        "import os, socket, sys\nos.setgid(65534); os.setuid(65534)\n"
        "s = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n"
        "    print('refused')\nelse:\n    print('connected')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(engine_paths(campaign.root).socket)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == "refused", done.stderr


def test_a_stale_socket_is_replaced(campaign: Campaign) -> None:
    folder = engine_paths(campaign.root).root
    folder.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(folder / "engine.sock"))
    stale.close()  # the file stays, nobody listens: what kill -9 of an engine leaves
    assert cli(campaign, "engine", "start")["running"] is True
    assert cli(campaign, "engine", "status")["running"] is True
    assert cli(campaign, "status")["runs"] == []


@pytest.mark.slow
def test_run_streams_survives_engine_kill_and_is_readopted(campaign: Campaign) -> None:
    toml = write_run(campaign, "long", max_steps=400)
    queued = cli(campaign, "run", str(toml))
    assert queued["run"] == "long"
    assert queued["state"] in ("queued", "running")
    run_dir = campaign.run("long").root

    # The stream delivers metrics while the run trains.
    events, last_id = stream_until(campaign, "/runs/long/stream", lambda ev: len(metric_steps(ev)) >= 5)
    assert metric_steps(events)[:5] == [1, 2, 3, 4, 5]
    assert cli(campaign, "status", "long")["state"] == "running"

    engine_pid = cli(campaign, "engine", "status")["pid"]
    worker_pid = cli(campaign, "status", "long")["pid"]
    os.kill(engine_pid, signal.SIGKILL)
    time.sleep(1.0)
    steps_before = read_metrics(run_dir / "metrics.jsonl")[-1]["step"]
    wait_for(lambda: read_metrics(run_dir / "metrics.jsonl")[-1]["step"] > steps_before + 5, what="training to go on")
    os.kill(worker_pid, 0)  # still alive without any engine

    status = cli(campaign, "status", "long")  # read from the files: no engine needed, none started
    assert status["state"] in ("running", "finished")
    assert cli(campaign, "engine", "status")["running"] is False
    cli(campaign, "engine", "start")  # a new engine, which re-adopts the worker
    assert cli(campaign, "engine", "status")["pid"] != engine_pid

    # Resume the stream from the last id across the engine restart: nothing missed, nothing twice.
    more, _ = stream_until(
        campaign,
        "/runs/long/stream",
        lambda ev: any(json.loads(e.data).get("event") == "finished" for e in ev if e.event == "event"),
        last_id=last_id,
        timeout=120,
    )
    streamed = metric_steps(events) + metric_steps(more)
    on_disk = [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl")]
    assert streamed == on_disk  # the stream is the file, line for line
    assert sorted(set(streamed)) == list(range(1, 401))  # every step exactly once after dedupe
    assert cli(campaign, "status", "long")["state"] == "finished"


@pytest.mark.slow
def test_sigkill_of_the_worker_fails_the_run_with_the_signal(campaign: Campaign) -> None:
    cli(campaign, "run", str(write_run(campaign, "doomed", max_steps=5000)))
    pid = wait_for(lambda: cli(campaign, "status", "doomed")["pid"], what="the worker's pid")
    wait_for(lambda: (campaign.run("doomed").root / "metrics.jsonl").exists(), what="training")
    os.kill(pid, signal.SIGKILL)
    # How soon the state follows (under 2 s on an idle machine) is measured by tests/perf/bench_timings.py.
    wait_for(lambda: cli(campaign, "status", "doomed")["state"] == "failed", timeout=10, what="failed state")
    failed = [e for e in read_jsonl(campaign.run("doomed").events) if e["event"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["signal"] == "SIGKILL"


@pytest.mark.slow
def test_tunedeck_stop_checkpoints_and_stops(campaign: Campaign) -> None:
    cli(campaign, "run", str(write_run(campaign, "halt", max_steps=5000, save_steps=1000)))
    run_dir = campaign.run("halt").root
    wait_for(
        lambda: run_dir.joinpath("metrics.jsonl").exists() and read_metrics(run_dir / "metrics.jsonl"), what="training"
    )
    stopped = cli(campaign, "stop", "halt")
    assert stopped["state"] == "stopped"
    last = read_jsonl(run_dir / "events.jsonl")[-1]
    assert last["event"] == "stopped"
    assert last["step"] in complete_checkpoints(run_dir / "checkpoints")
    resumed = cli(campaign, "resume", "halt")
    assert resumed["state"] in ("queued", "running")


@pytest.mark.slow
def test_queue_runs_one_job_at_a_time(campaign: Campaign) -> None:
    cli(campaign, "run", str(write_run(campaign, "first", max_steps=5000)))
    second = cli(campaign, "run", str(write_run(campaign, "second", max_steps=20)))
    assert second["state"] == "queued"
    wait_for(lambda: cli(campaign, "status", "first")["state"] == "running", what="first to run")
    assert cli(campaign, "status", "second")["state"] == "queued"
    cli(campaign, "stop", "first")
    wait_for(lambda: cli(campaign, "status", "second")["state"] == "finished", timeout=90, what="second to finish")


@pytest.mark.slow
def test_watch_rule_stops_a_run_at_the_first_value_above(campaign: Campaign) -> None:
    campaign_toml = campaign.root / "campaign.toml"
    campaign_toml.write_text(campaign_toml.read_text() + WATCH_RULE.format(threshold=1.9))
    cli(campaign, "run", str(write_run(campaign, "spiky", max_steps=2000, save_steps=1000)))
    run_dir = campaign.run("spiky").root
    wait_for(lambda: cli(campaign, "status", "spiky")["state"] == "stopped", timeout=90, what="the rule to stop it")
    records = read_metrics(run_dir / "metrics.jsonl")
    first_above = next(r["step"] for r in records if r.get("grad_norm", 0) > 1.9)
    events = read_jsonl(run_dir / "events.jsonl")
    alert = next(e for e in events if e["event"] == "alert")
    assert alert["rule"] == "grad-spike"
    assert alert["first_step"] == first_above
    stopped = events[-1]
    assert stopped["event"] == "stopped"
    assert "grad-spike" in stopped["reason"]
    assert stopped["step"] in complete_checkpoints(run_dir / "checkpoints")
    assert stopped["step"] - first_above <= 5  # stopped within a few steps of the value
    post_hoc = cli(campaign, "watch", "spiky")
    assert post_hoc["alerts"][0]["first_step"] == first_above


def test_tcp_needs_the_token(campaign: Campaign) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "engine.service", str(campaign.root), "--tcp", str(port)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        token_file = engine_paths(campaign.root).token
        wait_for(lambda: token_file.exists(), what="the token file")
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(base), what="TCP to listen")
        assert httpx.get(f"{base}/health").status_code == 401
        assert httpx.get(f"{base}/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = httpx.get(f"{base}/health", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert ok.json()["ok"] is True
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(base: str) -> bool:
    try:
        httpx.get(f"{base}/health", timeout=1)
    except httpx.TransportError:
        return False
    return True
