"""The worker modules called in this process on a few real Trainer steps: train, merge, bench, evaluate.

The fast counterparts of test_worker.py, test_merge.py and test_bench_run.py, which run the same
code as real worker processes (kills, resumes, the CLI) and are marked slow. Here each worker's
``main`` runs in the test process, so the imports of torch and transformers are paid once.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from engine.demo.reverse_task import reverse_rows
from engine.errors import NotFoundError
from engine.store.campaign import Campaign
from engine.store.checkpoints import complete_checkpoints
from engine.store.metrics import read_metrics, series
from engine.worker import bench, evaluate, merge, train
from tests.helpers import events, write_jsonl

STEPS = 12
RUN_TOML = """\
dataset = "datasets/train.jsonl"
eval_fraction = 0.125
[train]
learning_rate = 5e-3
batch_size = 8
max_steps = {max_steps}
logging_steps = 4
eval_steps = 6
save_steps = 6
seed = 0
"""


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Campaign:
    camp = Campaign.create(tmp_path_factory.mktemp("in-process") / "campaign", "in-process", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "train.jsonl", reverse_rows(128, seed=1))
    return camp


@pytest.fixture(autouse=True)
def _keep_sigterm() -> Iterator[None]:
    """The training worker takes over SIGTERM (a stop request); give this process its own back."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def _new_run(campaign: Campaign, name: str, max_steps: int = STEPS) -> Path:
    run_dir = campaign.run(name).root
    run_dir.mkdir(parents=True)
    (run_dir / "run.toml").write_text(RUN_TOML.format(max_steps=max_steps), encoding="utf-8")
    return run_dir


@pytest.fixture(scope="module")
def trained(campaign: Campaign) -> Path:
    """One run trained once for the module, then only read (merges write merged/ beside it)."""
    run_dir = _new_run(campaign, "few-steps")
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert train.main([str(run_dir)]) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    return run_dir


def test_a_few_steps_record_metrics_events_checkpoints_and_the_adapter(trained: Path) -> None:
    records = read_metrics(trained / "metrics.jsonl")
    losses = series(records, "loss")
    assert [step for step, _ in losses] == [4, 8, 12]
    assert losses[-1][1] < losses[0][1], losses  # the LoRA really trains
    eval_losses = series(records, "eval_loss")
    assert [step for step, _ in eval_losses] == [6, 12]
    assert eval_losses[-1][1] < eval_losses[0][1], eval_losses
    assert {"grad_norm", "learning_rate", "epoch", "ts"} <= set(records[0])
    assert "train_loss" in records[-1]
    kinds = [e["event"] for e in events(trained)]
    assert kinds == ["started", "checkpoint", "checkpoint", "finished"]
    assert events(trained)[0]["max_steps"] == STEPS
    assert sorted(complete_checkpoints(trained / "checkpoints")) == [6, 12]
    assert (trained / "adapter" / "adapter_config.json").is_file()
    assert not list(trained.glob(".adapter*")), "staging folder left behind"


def test_a_stop_request_ends_the_run_with_a_checkpoint_and_no_adapter(campaign: Campaign) -> None:
    run_dir = _new_run(campaign, "stop-at-once", max_steps=500)
    (run_dir / "stop.request").write_text(json.dumps({"reason": "asked before the first step"}))
    assert train.main([str(run_dir)]) == 0
    stopped = events(run_dir)[-1]
    assert (stopped["event"], stopped["reason"], stopped["step"]) == ("stopped", "asked before the first step", 1)
    assert sorted(complete_checkpoints(run_dir / "checkpoints")) == [1]
    assert not (run_dir / "stop.request").exists()
    assert not (run_dir / "adapter").exists()


def test_merge_a_checkpoint_then_the_final_adapter(
    trained: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert merge.main([str(trained), "--checkpoint", "6"]) == 0
    from_checkpoint = json.loads(capsys.readouterr().out)
    assert (from_checkpoint["checkpoint"], Path(from_checkpoint["adapter"]).name) == (6, "checkpoint-6")

    assert merge.main([str(trained)]) == 0
    summary = json.loads(capsys.readouterr().out)
    merged = trained / "merged"
    assert summary["merged"] == str(merged)
    assert summary["checkpoint"] is None
    assert summary["max_logit_diff"] <= 1e-3
    manifest = json.loads((merged / merge.MANIFEST).read_text())
    assert manifest["base"] == str(tiny_model)
    assert manifest["adapter"] == str(trained / "adapter")
    on_disk = merge.file_hashes(merged)
    assert manifest["files"] == {name: digest for name, digest in on_disk.items() if name != merge.MANIFEST}
    assert not list(trained.glob(".merged*")), "staging folder left behind"
    assert [e["checkpoint"] for e in events(trained) if e["event"] == "merged"] == [6, None]
    # The merged folder is an ordinary model folder, and differs from the base.
    probe = torch.tensor([[5, 9, 17, 3]])
    with torch.no_grad():
        merged_logits = AutoModelForCausalLM.from_pretrained(merged)(probe).logits
        base_logits = AutoModelForCausalLM.from_pretrained(tiny_model)(probe).logits
    assert (merged_logits - base_logits).abs().max().item() > 1e-3


def test_merge_of_a_missing_checkpoint_names_the_complete_ones(trained: Path) -> None:
    with pytest.raises(NotFoundError, match=r"no complete checkpoint at step 5 \(complete: 6, 12\)"):
        merge.main([str(trained), "--checkpoint", "5"])


def _suite(path: Path) -> Path:
    rows = [{"bench": "rev", "task_id": f"t{i}", "prompt": r["prompt"], "expected": r["completion"]}
            for i, r in enumerate(reverse_rows(3, seed=9))]  # fmt: skip
    return write_jsonl(path, rows)


def test_the_bench_worker_writes_every_row_and_sample_reproducibly(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = _suite(tmp_path / "suite.jsonl")
    outputs = []
    for attempt in ("a", "b"):
        out = tmp_path / f"{attempt}.jsonl"
        argv = [str(trained), "--suite", str(suite), "--out", str(out), "--samples", "2", "--checkpoint", "6"]
        assert bench.main([*argv, "--max-new-tokens", "8"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert (summary["rows"], summary["model"]) == (6, "checkpoint-6")
        outputs.append([json.loads(line) for line in out.read_text().splitlines()])
    records = outputs[0]
    assert [(r["task_id"], r["sample"]) for r in records] == [(f"t{i}", s) for s in (0, 1) for i in range(3)]
    assert all(r["bench"] == "rev" and isinstance(r["completion"], str) and r["latency_ms"] > 0 for r in records)
    # Sampled completions are seeded: a rerun gives the same text.
    assert [r["completion"] for r in outputs[1]] == [r["completion"] for r in records]


def test_evaluate_scores_the_base_and_adapter_on_base(
    trained: Path, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = write_jsonl(tmp_path / "heldout.jsonl", reverse_rows(4, seed=2))
    assert evaluate.main([str(tiny_model), str(rows), "--max-new-tokens", "8"]) == 0
    base = json.loads(capsys.readouterr().out)
    assert base == {"exact_match": 0.0, "n": 4}  # an untrained model reverses nothing
    assert evaluate.main([str(tiny_model), str(rows), "--adapter", str(trained / "adapter"), "--limit", "2"]) == 0
    adapted = json.loads(capsys.readouterr().out)
    assert adapted["n"] == 2
    assert 0.0 <= adapted["exact_match"] <= 1.0
    with pytest.raises(NotFoundError, match=r"not a model folder \(no config.json\)"):
        evaluate.main([str(tmp_path), str(rows)])
