"""``gpus = 2`` for real on a CPU: the worker under torchrun, two gloo ranks, the real Trainer.

TUNEDECK_ALLOW_CPU_DISTRIBUTED=1 lets a ``gpus = N`` run train as N CPU processes where there is
no CUDA GPU (without it the run is refused, see test_cli_paths.py). The worker is started as a
user or the service starts it, ``python -m engine.worker RUN_DIR``, and re-executes itself under
``python -m torch.distributed.run --standalone --nproc_per_node=2``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from engine.store.checkpoints import complete_checkpoints
from engine.worker.train import CPU_DISTRIBUTED_ENV, cpu_distributed_allowed
from tests.helpers import REPO, events

# Real torchrun jobs of a few seconds of training each (and ~10 s of imports per process).
pytestmark = pytest.mark.slow

RUN = """\
dataset = "datasets/train.jsonl"
[train]
learning_rate = 5e-3
lr_scheduler = "constant"
batch_size = {batch_size}
max_steps = {max_steps}
logging_steps = 1
save_steps = {save_steps}
seed = 0
gpus = {gpus}
"""


@contextmanager
def _worker(run_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """``python -m engine.worker RUN_DIR`` with CPU processes allowed; killed (all ranks) if left running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.worker", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), CPU_DISTRIBUTED_ENV: "1"},
        start_new_session=True,  # torchrun and its ranks share one process group, killed together
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def _finish(process: subprocess.Popen[str], timeout: float = 120.0) -> str:
    """Wait for the job to end with status 0; a rank left waiting in a collective fails here."""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"the job hung (a rank waiting for another?):\n{output[-3000:]}") from None
    assert process.returncode == 0, output[-3000:]
    return output


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], what: str, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        assert process.poll() is None, f"the job ended while waiting for {what}"
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file as written (no deduplication)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _last_step(run_dir: Path) -> int:
    records = [r for r in _lines(run_dir / "metrics.jsonl") if "loss" in r]
    return records[-1]["step"] if records else 0


def _rank_pids(torchrun_pid: int) -> dict[int, int]:
    """RANK -> pid of the processes torchrun started."""
    ranks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent != torchrun_pid:
            continue
        for item in environ:
            if item.startswith(b"RANK="):
                ranks[int(item[5:])] = int(entry.name)
    return ranks


def _assert_every_rank_saved(run_dir: Path, step: int) -> None:
    """checkpoint-<step> is complete and holds both ranks' RNG state: both ranks saved at that step."""
    checkpoints = complete_checkpoints(run_dir / "checkpoints")
    assert list(checkpoints) == [step]
    folder = checkpoints[step]
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= {p.name for p in folder.iterdir()}
    assert json.loads((folder / "trainer_state.json").read_text())["global_step"] == step


def test_the_switch_is_read_only_where_there_is_no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.delenv(CPU_DISTRIBUTED_ENV, raising=False)
    assert not cpu_distributed_allowed()
    monkeypatch.setenv(CPU_DISTRIBUTED_ENV, "1")
    assert cpu_distributed_allowed() == (not torch.cuda.is_available())


def test_two_ranks_log_once_and_match_one_process_with_the_same_global_batch(make_run) -> None:  # type: ignore[no-untyped-def]
    """2 ranks x batch 8 = 1 process x batch 16: same rows per step (rank r takes the r-th batch of 8
    of the same seeded order), so the same loss, unweighted CE and grad norm at every step."""
    steps = 20
    one = make_run("one-process", text=RUN.format(batch_size=16, max_steps=steps, save_steps=steps, gpus=1))
    two = make_run("two-ranks", text=RUN.format(batch_size=8, max_steps=steps, save_steps=steps, gpus=2))
    with _worker(one) as reference, _worker(two) as distributed:
        _finish(reference)
        _finish(distributed)

    # (a) One writer: each step logged once, one lifecycle, both ranks' RNG state in the checkpoint.
    written = [r for r in _lines(two / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in written] == list(range(1, steps + 1))
    assert [e["event"] for e in events(two)] == ["started", "checkpoint", "finished"]
    _assert_every_rank_saved(two, steps)
    assert (two / "adapter" / "adapter_config.json").is_file()

    # (c) The loss is normalised over both ranks' tokens: equal to the single process's.
    expected = [r for r in _lines(one / "metrics.jsonl") if "loss" in r]
    assert len(expected) == steps
    for want, got in zip(expected, written, strict=True):
        for key in ("loss", "ce", "grad_norm"):
            assert got[key] == pytest.approx(want[key], rel=1e-4), (got["step"], key)
        assert got["num_input_tokens_seen"] == want["num_input_tokens_seen"]  # both ranks' tokens
        assert got["ce"] == pytest.approx(got["loss"], rel=1e-5)  # all weights 1, no KL
    assert written[-1]["loss"] < written[0]["loss"] - 1.0  # and it learns


def test_a_stop_request_stops_both_ranks_at_the_same_step(make_run) -> None:  # type: ignore[no-untyped-def]
    run_dir = make_run("stop-file", text=RUN.format(batch_size=4, max_steps=5000, save_steps=1000, gpus=2))
    with _worker(run_dir) as process:
        _wait_for(lambda: _last_step(run_dir) >= 5, process, "training to start")
        (run_dir / "stop.request").write_text(json.dumps({"reason": "test asked"}))
        _finish(process)
    stopped = events(run_dir)[-1]
    assert stopped["event"] == "stopped"
    assert stopped["reason"] == "test asked"
    step = stopped["step"]
    assert 5 <= step < 1000
    _assert_every_rank_saved(run_dir, step)
    written = [r["step"] for r in _lines(run_dir / "metrics.jsonl") if "loss" in r]
    assert written == list(range(1, step + 1))
    assert not (run_dir / "stop.request").exists()
    assert not (run_dir / "adapter").exists()


def test_sigterm_to_one_rank_stops_both_at_the_same_step(make_run) -> None:  # type: ignore[no-untyped-def]
    """Only rank 1 is told to stop. Had it stopped alone, rank 0 would wait in its next
    all-reduce for ever; the decision is all-reduced each step, so both stop together."""
    run_dir = make_run("stop-one-rank", text=RUN.format(batch_size=4, max_steps=5000, save_steps=1000, gpus=2))
    with _worker(run_dir) as process:
        _wait_for(lambda: _last_step(run_dir) >= 3, process, "training to start")
        ranks = _rank_pids(process.pid)
        assert sorted(ranks) == [0, 1], ranks
        os.kill(ranks[1], signal.SIGTERM)
        _finish(process, timeout=90)
    stopped = events(run_dir)[-1]
    assert stopped["event"] == "stopped"
    assert stopped["reason"] == "SIGTERM"  # rank 0 learns why from the all-reduced flag
    _assert_every_rank_saved(run_dir, stopped["step"])


GRPO_RUN = """\
dataset = "datasets/grpo.jsonl"
[method]
name = "grpo"
max_completion_length = 8
[[method.rewards]]
fn = "length"
min_chars = 40
[train]
learning_rate = 5e-3
batch_size = 8
max_steps = 6
logging_steps = 1
save_steps = 1000
seed = 0
gpus = 2
"""


def test_grpo_on_two_ranks_logs_each_tasks_reward_over_both_ranks(make_run, campaign) -> None:  # type: ignore[no-untyped-def]
    """With one task, task_reward/<task> is the mean over every completion: exactly TRL's ``reward``,
    which is over both ranks. Rank 0's share alone differs (the lengths, so the rewards, vary)."""
    from tests.helpers import grpo_rows, write_jsonl

    rows = [{**row, "task": "only"} for row in grpo_rows(64, seed=1)]
    write_jsonl(campaign.root / "datasets" / "grpo.jsonl", rows)
    run_dir = make_run("grpo-two-ranks", text=GRPO_RUN)
    with _worker(run_dir) as process:
        _finish(process, timeout=240)
    logged = [r for r in _lines(run_dir / "metrics.jsonl") if "reward" in r]
    assert [r["step"] for r in logged] == list(range(1, 7))
    assert any(r["rewards/length/std"] > 0 for r in logged)  # rewards vary: a share would show
    for record in logged:
        assert record["task_reward/only"] == pytest.approx(record["reward"], abs=1e-6), record["step"]
