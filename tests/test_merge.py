"""Merging: the merged folder loads like any model and agrees with adapter-on-base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine.demo.reverse_task import reverse_rows
from engine.store.campaign import Campaign
from tests.helpers import FAST_RUN, events, tunedeck, worker, write_jsonl

# A training worker and a merge worker process per test: the fast loop has test_worker_in_process.py.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Campaign:
    """One campaign and one trained run for the whole module (training is the slow part)."""
    camp = Campaign.create(tmp_path_factory.mktemp("merge") / "campaign", "merge tests", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "train.jsonl", reverse_rows(400, seed=1))
    return camp


@pytest.fixture(scope="module")
def trained_run(campaign: Campaign) -> Path:
    run_dir = campaign.run("merge-me").root
    run_dir.mkdir(parents=True)
    (run_dir / "run.toml").write_text(FAST_RUN.format(max_steps=60, logging_steps=10, save_steps=30))
    assert worker(run_dir).wait(timeout=300) == 0
    return run_dir


def test_merge_writes_a_loadable_model_with_a_manifest(campaign: Campaign, trained_run: Path, tiny_model: Path) -> None:
    done = tunedeck("merge", "merge-me", "--campaign", str(campaign.root), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    merged = trained_run / "merged"
    assert summary["merged"] == str(merged)
    assert summary["max_logit_diff"] <= 1e-3
    manifest = json.loads((merged / "manifest.json").read_text())
    assert manifest["base"] == str(tiny_model)
    assert manifest["adapter"] == str(trained_run / "adapter")
    assert manifest["checkpoint"] is None
    assert "model.safetensors" in manifest["files"]
    assert not list(trained_run.glob(".merged*")), "staging folder left behind"
    assert events(trained_run)[-1]["event"] == "merged"

    # Independently of the manifest: merged logits agree with adapter-on-base, and the
    # adapter really changed the model (so agreement is not trivial).
    tokenizer = AutoTokenizer.from_pretrained(merged)
    batch = tokenizer(["reverse: a b c d\n", "reverse: h g\n"], return_tensors="pt", padding=True)
    with torch.no_grad():
        merged_logits = AutoModelForCausalLM.from_pretrained(merged)(**batch).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_model)
        base_logits = base(**batch).logits
        adapter_logits = PeftModel.from_pretrained(base, trained_run / "adapter")(**batch).logits
    assert (merged_logits - adapter_logits).abs().max().item() <= 1e-3
    assert (merged_logits - base_logits).abs().max().item() > 0.1


def test_merge_a_checkpoint(campaign: Campaign, trained_run: Path) -> None:
    done = tunedeck("merge", "merge-me", "--checkpoint", "30", "--campaign", str(campaign.root), "--json")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((trained_run / "merged" / "manifest.json").read_text())
    assert manifest["checkpoint"] == 30
    assert manifest["adapter"].endswith("checkpoint-30")


def test_merge_of_a_missing_checkpoint_is_a_clear_error(campaign: Campaign, trained_run: Path) -> None:
    done = tunedeck("merge", "merge-me", "--checkpoint", "45", "--campaign", str(campaign.root))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "no complete checkpoint at step 45 (complete: 30, 60)" in done.stderr
    assert not list(trained_run.glob(".merged*"))
