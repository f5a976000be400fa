"""Four processes promoting and reverting at once, 40 operations in all, against one campaign.

While they run, the test reads production.json again and again (it must always parse as a whole
pointer) and, holding the registry lock as a writer would, checks it equals what registry.jsonl
implies. Afterwards registry.jsonl has exactly one whole line per operation that reported success,
numbered 1..N, and production.json is what the log replays to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.decisions.registry_log import replay
from engine.store.campaign import Campaign
from engine.store.production import registry_lock, registry_path
from tests.helpers import REPO
from tests.test_registry import make_merged

PROCESSES, OPERATIONS = 4, 10  # 40 in all

# Each process alternates promotes (of a run chosen by its number) and reverts, printing one JSON
# line per operation: whether it changed production, and the seq of the line it appended.
WORKER = """
import json, sys
from engine.decisions.registry import promote, revert
from engine.store.campaign import Campaign
campaign, me, count = Campaign.open(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for k in range(count):
    if k % 3 == 2:
        result = revert(campaign, reason=f"p{me} op{k}")
    else:
        result = promote(campaign, f"r{(me + k) % 4}", reason=f"p{me} op{k}")
    seq = result.entry.seq if result.done and result.entry else None
    print(json.dumps({"done": result.done, "refused": result.refused, "seq": seq}), flush=True)
"""


@pytest.fixture
def campaign(tmp_path: Path) -> Campaign:
    """No [gate] (the gate's DuckDB is not what is under test), four runs with merged models."""
    campaign = Campaign.create(tmp_path / "c", "concurrent")
    for index in range(4):
        run = campaign.runs_dir / f"r{index}"
        run.mkdir(parents=True)
        (run / "run.toml").write_text('dataset = "d.jsonl"\n', encoding="utf-8")
        make_merged(run, f"weights {index}".encode())
    return campaign


def _watch(campaign: Campaign, stop: threading.Event, problems: list[str], checks: list[int]) -> None:
    """Read production.json all along; under the lock, compare it with the log's replay."""
    path = campaign.root / "production.json"
    while not stop.is_set():
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = None  # every promote undone: no production, which is valid
        if text is not None:
            try:
                assert json.loads(text)["run"].startswith("r")
            except (ValueError, KeyError, AssertionError) as exc:
                problems.append(f"production.json unreadable mid-run: {exc!r}: {text!r}")
        lock = registry_lock(campaign)
        lock.acquire(wait_s=30)
        try:
            implied = replay(registry_path(campaign), None).production
            on_disk = json.loads(path.read_text()) if path.exists() else None
            if registry_path(campaign).exists() and (implied.model_dump(mode="json") if implied else None) != on_disk:
                problems.append(f"production.json {on_disk} is not what the log implies: {implied}")
            checks.append(1)
        finally:
            lock.release()
        time.sleep(0.01)


@pytest.mark.slow
def test_four_processes_forty_operations(campaign: Campaign) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    stop, problems, checks = threading.Event(), [], []  # type: ignore[var-annotated]
    watcher = threading.Thread(target=_watch, args=(campaign, stop, problems, checks))
    watcher.start()
    try:
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(campaign.root), str(me), str(OPERATIONS)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )  # fmt: skip
            for me in range(PROCESSES)
        ]
        outputs = [worker.communicate(timeout=300) for worker in workers]
    finally:
        stop.set()
        watcher.join()
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    results = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    assert len(results) == PROCESSES * OPERATIONS
    # A refusal here can only be a promote of what is in production already, or nothing to revert.
    assert {r["refused"] for r in results if not r["done"]} <= {"unchanged", "nothing_to_undo"}
    succeeded = sorted(r["seq"] for r in results if r["done"])
    assert succeeded, "no operation went through"

    text = registry_path(campaign).read_text()
    assert text.endswith("\n")
    log = [json.loads(line) for line in text.splitlines()]  # every line whole
    assert [line["seq"] for line in log] == list(range(1, len(log) + 1)) == succeeded
    implied = replay(registry_path(campaign), None).production
    on_disk = campaign.root / "production.json"
    assert (json.loads(on_disk.read_text()) if on_disk.exists() else None) == (
        implied.model_dump(mode="json") if implied else None
    )
    assert problems == []
    assert len(checks) > 5  # the watcher really looked while they ran
