"""The real training worker in a real process: learning, crash safety, resume, stop requests."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.store.campaign import Campaign
from engine.store.checkpoints import complete_checkpoints
from engine.store.metrics import read_metrics, series
from tests.helpers import events, tunedeck, worker

# Real worker processes, killed and resumed: the fast loop has test_worker_in_process.py.
pytestmark = pytest.mark.slow
MakeRun = Callable[..., Path]


def _wait_for(condition: Callable[[], bool], timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _last_step(run_dir: Path) -> int:
    records = read_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    return records[-1]["step"] if records else 0


def test_a_real_run_learns_and_records_everything(campaign: Campaign, make_run: MakeRun) -> None:
    run_dir = make_run("learn", max_steps=200, logging_steps=10, save_steps=100)
    done = tunedeck("run", str(run_dir / "run.toml"), "--foreground", "--campaign", str(campaign.root))
    assert done.returncode == 0, done.stderr
    losses = [loss for _, loss in series(read_metrics(run_dir / "metrics.jsonl"), "loss")]
    assert len(losses) == 20
    assert losses[-1] < losses[0] * 0.5, losses  # ~5.7 -> under 2.5
    last = read_metrics(run_dir / "metrics.jsonl")[-1]
    assert {"grad_norm", "learning_rate", "epoch", "ts", "tokens_per_second"} <= set(
        read_metrics(run_dir / "metrics.jsonl")[0]
    )
    assert last["step"] == 200
    assert "train_loss" in last  # the summary log merges into the final step
    kinds = [e["event"] for e in events(run_dir)]
    assert kinds == ["started", "checkpoint", "checkpoint", "finished"]
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
    assert sorted(complete_checkpoints(run_dir / "checkpoints")) == [100, 200]


def test_eval_split_logs_eval_loss(campaign: Campaign, make_run: MakeRun) -> None:
    text = (
        'dataset = "datasets/train.jsonl"\neval_fraction = 0.1\n'
        "[train]\nlearning_rate = 5e-3\nbatch_size = 16\nmax_steps = 20\nlogging_steps = 10\n"
        "eval_steps = 10\nsave_steps = 20\n"
    )
    run_dir = make_run("with-eval", text=text)
    done = tunedeck("run", str(run_dir / "run.toml"), "--foreground", "--campaign", str(campaign.root))
    assert done.returncode == 0, done.stderr
    records = read_metrics(run_dir / "metrics.jsonl")
    at_10 = next(r for r in records if r["step"] == 10)
    assert "loss" in at_10
    assert "eval_loss" in at_10  # train and eval share the step, both kept


def test_sigkill_between_checkpoints_then_resume_reproduces_the_run(campaign: Campaign, make_run: MakeRun) -> None:
    settings = {"max_steps": 80, "logging_steps": 2, "save_steps": 20}
    reference = make_run("reference", **settings)
    assert worker(reference).wait(timeout=300) == 0
    expected = {step: loss for step, loss in series(read_metrics(reference / "metrics.jsonl"), "loss")}

    killed = make_run("killed", **settings)
    process = worker(killed)
    _wait_for(
        lambda: 20 in complete_checkpoints(killed / "checkpoints") and _last_step(killed) >= 26,
        what="a checkpoint and a few more steps",
    )
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    step_at_kill = _last_step(killed)
    assert step_at_kill < 80, "the run finished before it could be killed"

    # Only whole lines: every line of every JSONL file parses.
    for name in ("metrics.jsonl", "events.jsonl"):
        for line in (killed / name).read_text().splitlines():
            json.loads(line)
    # A crash mid-save leaves an empty checkpoint folder; resume must skip it.
    (killed / "checkpoints" / "checkpoint-9999").mkdir()

    assert worker(killed, "--resume").wait(timeout=300) == 0
    resumed = dict(series(read_metrics(killed / "metrics.jsonl"), "loss"))
    assert sorted(resumed) == sorted(expected)
    for step, loss in expected.items():
        assert resumed[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), step
    kinds = [e["event"] for e in events(killed)]
    assert kinds.count("started") == 2
    assert kinds[-1] == "finished"
    resumed_from = next(e for e in events(killed) if e["event"] == "resumed")["checkpoint"]
    assert Path(resumed_from).name.startswith("checkpoint-")
    assert Path(resumed_from).name != "checkpoint-9999"


def test_stop_request_saves_a_checkpoint_and_stops_cleanly(campaign: Campaign, make_run: MakeRun) -> None:
    run_dir = make_run("stoppable", max_steps=5000, logging_steps=1, save_steps=1000)
    process = worker(run_dir)
    _wait_for(lambda: _last_step(run_dir) >= 5, what="training to start")
    (run_dir / "stop.request").write_text(json.dumps({"reason": "test asked"}))
    assert process.wait(timeout=60) == 0
    stopped = events(run_dir)[-1]
    assert stopped["event"] == "stopped"
    assert stopped["reason"] == "test asked"
    step = stopped["step"]
    assert 5 <= step < 5000
    assert step in complete_checkpoints(run_dir / "checkpoints")
    assert not (run_dir / "stop.request").exists()
    assert not (run_dir / "adapter").exists()  # a stopped run has checkpoints, not a final adapter


def test_sigterm_is_a_stop_request(campaign: Campaign, make_run: MakeRun) -> None:
    run_dir = make_run("terminated", max_steps=5000, logging_steps=1, save_steps=1000)
    process = worker(run_dir)
    _wait_for(lambda: _last_step(run_dir) >= 3, what="training to start")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert events(run_dir)[-1]["event"] == "stopped"
    assert events(run_dir)[-1]["reason"] == "SIGTERM"
