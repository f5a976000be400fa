"""Imports that would lose a live run's logs, or never end, are refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.store.campaign import Campaign
from engine.store.metrics import read_metrics
from tests.helpers import REPO, tunedeck, worker

STATE = REPO / "tests" / "data" / "trainer_state" / "hf_sft.json"


def test_dev_zero_is_not_a_trainer_state(campaign: Campaign) -> None:
    done = tunedeck("import", "trainer-state", "/dev/zero", "--run", "z", "--campaign", str(campaign.root), timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip() == "tunedeck: /dev/zero: not a regular file"
    assert not campaign.run("z").root.exists()


@pytest.mark.slow
def test_import_into_a_run_that_is_training_is_refused_and_loses_nothing(
    campaign: Campaign, make_run: Callable[..., Path]
) -> None:
    """The reproduction from the reliability issue: 56 of 60 logs were once lost this way."""
    run_dir = make_run("live", max_steps=60, logging_steps=1, save_steps=60)
    process = worker(run_dir)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(read_metrics(run_dir / "metrics.jsonl")) < 3:
            time.sleep(0.1)
        assert read_metrics(run_dir / "metrics.jsonl"), "the worker never logged"
        done = tunedeck("import", "trainer-state", str(STATE), "--run", "live", "--campaign", str(campaign.root))
        assert process.poll() is None, "the run finished before the import was tried: make it longer"
        assert done.returncode == 2, done.stdout
        assert "run 'live' is training" in done.stderr
        assert done.stderr.count("\n") == 1
    finally:
        assert process.wait(timeout=300) == 0
    steps = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "loss" in r]
    assert steps == list(range(1, 61)), "a log of the live run was lost"
    events = [json.loads(line)["event"] for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert "imported" not in events

    # Once the worker has ended, the lock is free and the same import goes through.
    after = tunedeck("import", "trainer-state", str(STATE), "--run", "live", "--campaign", str(campaign.root), "--json")
    assert after.returncode == 0, after.stderr


def test_two_bench_imports_at_once_are_serialised_and_say_what_they_replaced(
    campaign: Campaign, tmp_path: Path
) -> None:
    """Both once reported success while one was silently discarded."""
    files = {}
    for name, count in (("a", 300), ("b", 120)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text(
            "".join(
                json.dumps({"bench": "he", "task_id": f"{name}/{i}", "passed": i % 2 == 0}) + "\n" for i in range(count)
            )
        )
        files[name] = (path, count)
    command = [sys.executable, "-c", "from engine.cli.main import main; main()"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = {
        name: subprocess.Popen(
            [*command, "bench", "import", str(path), "--run", "r1", "--campaign", str(campaign.root), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name, (path, _) in files.items()
    }
    results = {}
    for name, process in processes.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results[name] = json.loads(out)
    first, second = sorted(results, key=lambda name: results[name]["replaced"]["he"])
    assert results[first]["replaced"] == {"he": 0}
    assert results[second]["replaced"] == {"he": files[first][1]}  # it says whose rows it undid
    final = [json.loads(line)["task_id"] for line in (campaign.root / "bench" / "r1" / "he.jsonl").open()]
    assert len(final) == files[second][1]
    assert all(task.startswith(f"{second}/") for task in final)
