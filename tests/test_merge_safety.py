"""Merges that cannot corrupt each other, merged folders that must verify, modes that follow the umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from engine.bench.model_choice import choose_model
from engine.demo.reverse_task import reverse_rows
from engine.errors import NotFoundError
from engine.runs.launch import merge_command
from engine.store.campaign import Campaign
from engine.store.merged import merged_problem
from tests.helpers import FAST_RUN, REPO, worker, write_jsonl

pytestmark = pytest.mark.slow  # trains a run and merges it three times


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Campaign:
    camp = Campaign.create(tmp_path_factory.mktemp("merge-safety") / "campaign", "merge safety", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "train.jsonl", reverse_rows(200, seed=1))
    run_dir = camp.run("m1").root
    run_dir.mkdir(parents=True)
    (run_dir / "run.toml").write_text(FAST_RUN.format(max_steps=20, logging_steps=10, save_steps=10))
    assert worker(run_dir).wait(timeout=300) == 0
    return camp


def start_merge(campaign: Campaign) -> subprocess.Popen[str]:
    return subprocess.Popen(
        merge_command(campaign.run("m1").root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_two_merges_at_once_one_is_refused_and_the_result_verifies(campaign: Campaign) -> None:
    first, second = start_merge(campaign), start_merge(campaign)
    outcomes = [(p.wait(timeout=300), *p.communicate()) for p in (first, second)]
    codes = sorted(code for code, _, _ in outcomes)
    refused = [err for code, _, err in outcomes if code == 2]
    # Both may succeed one after the other if the first finished before the second started;
    # what must never happen is two merges writing at once.
    if codes == [0, 2]:
        assert "another merge of run 'm1' is running" in refused[0]
        assert refused[0].strip().count("\n") == 0, refused[0]
    else:
        assert codes == [0, 0], outcomes
    merged = campaign.run("m1").merged
    assert merged_problem(merged) is None
    assert not list(campaign.run("m1").root.glob(".merged.*")), "a staging folder was left behind"
    assert choose_model(campaign, "m1").label == "merged"


def test_merged_files_follow_the_umask(campaign: Campaign) -> None:
    merged = campaign.run("m1").merged
    if not merged.exists():
        assert start_merge(campaign).wait(timeout=300) == 0
    weights = merged / "model.safetensors"
    assert weights.is_file()
    # save_pretrained writes 0600 whatever the umask; what goes live is 0644 under umask 022.
    assert stat.S_IMODE(weights.stat().st_mode) == 0o644
    assert stat.S_IMODE(merged.stat().st_mode) == 0o755
    adapter_weights = campaign.run("m1").adapter / "adapter_model.safetensors"
    assert stat.S_IMODE(adapter_weights.stat().st_mode) == 0o644


def test_a_merged_folder_that_lost_its_weights_is_refused_not_replaced_by_the_adapter(campaign: Campaign) -> None:
    merged = campaign.run("m1").merged
    if not merged.exists():
        assert start_merge(campaign).wait(timeout=300) == 0
    weights = merged / "model.safetensors"
    saved = weights.read_bytes()
    try:
        weights.unlink()
        assert merged_problem(merged) == "no model weights"
        with pytest.raises(NotFoundError, match=r"does not verify \(no model weights\): merge again"):
            choose_model(campaign, "m1")
        weights.write_bytes(saved[:-1])  # truncated by one byte: the hash catches it
        assert merged_problem(merged) == "model.safetensors does not match its hash in manifest.json"
    finally:
        weights.write_bytes(saved)
    assert merged_problem(merged) is None
    manifest = json.loads((merged / "manifest.json").read_text())
    assert "model.safetensors" in manifest["files"]
