"""Preference and GRPO runs through `tunedeck run` and the real engine, and GRPO learning after an SFT warm-up.

All slow: each starts the engine and worker processes, or trains for tens of seconds.
"""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.demo.reverse_task import reverse_rows
from engine.store.campaign import Campaign
from engine.store.checkpoints import complete_checkpoints
from engine.store.jsonl import read_jsonl
from engine.store.metrics import read_metrics, series
from tests.helpers import grpo_rows, preference_rows, stop_engine_and_workers, tunedeck, wait_for, write_jsonl

pytestmark = pytest.mark.slow

WATCH = """
[[watch]]
name = "reward-signal-gone"
metric = "frac_reward_zero_std"
at_least = 0.9
action = "stop"
"""
GRPO_RUN = """\
dataset = "datasets/grpo.jsonl"
[method]
name = "grpo"
max_completion_length = 8
[[method.rewards]]
fn = "exact_match"
[train]
learning_rate = 5e-3
batch_size = 8
max_steps = {steps}
logging_steps = 2
save_steps = 1000
"""


@pytest.fixture
def campaign(tiny_model: Path) -> Iterator[Campaign]:
    """A campaign in a short path (Unix socket paths are limited to 107 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="td-trl-", dir="/tmp"))
    camp = Campaign.create(root / "c", "trl e2e", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "grpo.jsonl", grpo_rows(64, seed=1))
    write_jsonl(camp.root / "datasets" / "pref.jsonl", preference_rows(96, seed=1))
    yield camp
    stop_engine_and_workers(camp.root)
    shutil.rmtree(root, ignore_errors=True)


def cli(campaign: Campaign, *args: str) -> Any:
    done = tunedeck(*args, "--campaign", str(campaign.root), "--json", timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_watch_rule_on_a_trl_metric_stops_a_grpo_run_which_then_resumes(campaign: Campaign) -> None:
    toml = campaign.root / "campaign.toml"
    toml.write_text(toml.read_text() + WATCH)
    run_toml = campaign.root / "grpo.toml"
    run_toml.write_text(GRPO_RUN.format(steps=400))
    cli(campaign, "run", str(run_toml))
    run_dir = campaign.run("grpo").root
    # An untrained model earns no exact-match reward: every group's rewards are equal, no signal.
    wait_for(lambda: cli(campaign, "status", "grpo")["state"] == "stopped", timeout=150, what="the rule to stop it")
    records = read_metrics(run_dir / "metrics.jsonl")
    first = next(r["step"] for r in records if r.get("frac_reward_zero_std", 0) >= 0.9)
    run_events = read_jsonl(run_dir / "events.jsonl")
    alert = next(e for e in run_events if e["event"] == "alert")
    assert (alert["rule"], alert["first_step"]) == ("reward-signal-gone", first)
    stopped = run_events[-1]
    assert stopped["event"] == "stopped"
    assert "reward-signal-gone" in stopped["reason"]
    assert stopped["step"] in complete_checkpoints(run_dir / "checkpoints")
    assert stopped["step"] < 400
    # Resumed with the rule removed (it would fire again), the run finishes from its checkpoint.
    toml.write_text(toml.read_text().replace(WATCH, ""))
    cli(campaign, "engine", "stop")
    run_toml_in_run = run_dir / "run.toml"
    run_toml_in_run.write_text(
        run_toml_in_run.read_text().replace("max_steps = 400", f"max_steps = {stopped['step'] + 4}")
    )
    cli(campaign, "resume", "grpo")
    wait_for(lambda: cli(campaign, "status", "grpo")["state"] == "finished", timeout=150, what="the resumed run")
    assert read_metrics(run_dir / "metrics.jsonl")[-1]["step"] == stopped["step"] + 4


def test_a_dpo_run_streams_trl_metrics_through_the_engine_and_merges(campaign: Campaign) -> None:
    run_toml = campaign.root / "dpo.toml"
    run_toml.write_text(
        'dataset = "datasets/pref.jsonl"\nmethod = "dpo"\n[train]\nlearning_rate = 5e-3\nbatch_size = 8\n'
        "max_steps = 12\nlogging_steps = 4\nsave_steps = 6\n"
    )
    cli(campaign, "run", str(run_toml))
    wait_for(lambda: cli(campaign, "status", "dpo")["state"] == "finished", timeout=150, what="the DPO run")
    run_dir = campaign.run("dpo").root
    margins = series(read_metrics(run_dir / "metrics.jsonl"), "rewards/margins")
    assert [step for step, _ in margins] == [4, 8, 12]
    merged = cli(campaign, "merge", "dpo")
    assert merged["max_logit_diff"] <= 1e-3
    assert (run_dir / "merged" / "config.json").is_file()


@pytest.fixture
def _keep_sigterm() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("_keep_sigterm")
def test_grpo_raises_the_reward_after_an_sft_warm_up(tmp_path: Path, tiny_model: Path) -> None:
    from engine.worker import merge, train

    camp = Campaign.create(tmp_path / "campaign", "warm", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "sft.jsonl", reverse_rows(400, seed=1))
    write_jsonl(camp.root / "datasets" / "grpo.jsonl", grpo_rows(400, seed=1))
    warm = camp.run("warm").root
    warm.mkdir(parents=True)
    (warm / "run.toml").write_text(
        'dataset = "datasets/sft.jsonl"\n[train]\nlearning_rate = 5e-3\nbatch_size = 16\nmax_steps = 400\n'
        "logging_steps = 100\nsave_steps = 1000\n"
    )
    assert train.main([str(warm)]) == 0
    assert merge.main([str(warm)]) == 0
    grpo = camp.run("grpo").root
    grpo.mkdir(parents=True)
    text = GRPO_RUN.format(steps=60).replace("logging_steps = 2", "logging_steps = 5").replace("5e-3", "2e-3")
    (grpo / "run.toml").write_text('base = "runs/warm/merged"\n' + text.replace("batch_size = 8", "batch_size = 16"))
    assert train.main([str(grpo)]) == 0
    rewards = [v for _, v in series(read_metrics(grpo / "metrics.jsonl"), "reward")]
    assert len(rewards) == 12
    assert min(rewards) > 0.0  # warmed up: some completions earn the exact-match reward from the start
    early, late = sum(rewards[:4]) / 4, sum(rewards[-4:]) / 4
    assert late > early, rewards
