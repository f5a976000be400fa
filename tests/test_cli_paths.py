"""CLI paths that succeed, worker refusals that need torch to decide, and launcher commands."""

from __future__ import annotations

import json
import runpy
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.runs.launch import train_command
from engine.store.campaign import Campaign
from engine.store.metrics import read_metrics
from tests.helpers import REPO, tunedeck

DATA = REPO / "tests" / "data" / "trainer_state"


def test_import_trainer_state_through_the_cli(campaign: Campaign) -> None:
    done = tunedeck(
        "import",
        "trainer-state",
        str(DATA / "hf_sft.json"),
        "--run",
        "imported",
        "--campaign",
        str(campaign.root),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["run"] == "imported"
    assert summary["created_run"] is True
    records = read_metrics(campaign.run("imported").metrics)
    assert any("eval_loss" in r and "loss" in r for r in records)
    again = tunedeck(
        "import", "trainer-state", str(DATA / "hf_sft.json"), "--run", "imported", "--campaign", str(campaign.root)
    )
    assert again.returncode == 0
    assert read_metrics(campaign.run("imported").metrics) == records


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("load_in_4bit = true", "train.load_in_4bit: 4-bit QLoRA needs a CUDA GPU and bitsandbytes"),
        ('precision = "bf16"', "train.precision: bf16 needs a CUDA GPU"),
        ("gpus = 2", "train.gpus: asks for 2 GPUs, this machine has 0"),
    ],
)
def test_gpu_only_settings_are_refused_clearly_on_a_cpu(
    make_run: Callable[..., Path],
    setting: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``python -m engine.worker RUN_DIR`` run in this process: the refusal comes before any model loads."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("these settings are refused only where torch sees no CUDA GPU")
    run_dir = make_run("gpu-only", text=f'dataset = "datasets/train.jsonl"\n[train]\nmax_steps = 2\n{setting}\n')
    monkeypatch.setattr(sys, "argv", ["engine.worker", str(run_dir)])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("engine.worker", run_name="__main__")
    stderr = capsys.readouterr().err
    assert exited.value.code == 2
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.strip().startswith(f"tunedeck: {run_dir / 'run.toml'}: {message}")
    # Nothing trained or saved; only the reason, recorded so `tunedeck status` can say why.
    assert sorted(p.name for p in run_dir.iterdir()) == ["events.jsonl", "run.toml"]
    (failed,) = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert failed["event"] == "failed"
    assert failed["error"].startswith(f"{run_dir / 'run.toml'}: {message}")


def test_multi_gpu_runs_launch_under_torchrun() -> None:
    command = train_command(Path("/c/runs/r1"), resume=True, gpus=4)
    assert command[1:6] == ["-P", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4"]
    assert command[-4:] == ["-m", "engine.worker", "/c/runs/r1", "--resume"]
    assert train_command(Path("/c/runs/r1"))[1:] == ["-P", "-m", "engine.worker", "/c/runs/r1"]
