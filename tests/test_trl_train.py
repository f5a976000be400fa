"""DPO, ORPO, KTO, CPO and GRPO on the real tiny model with the real TRL trainers, in this process.

Each run goes through the worker's one entry point (engine.worker.train.main), so it gets what an SFT
run gets: metrics.jsonl with TRL's own key names, lifecycle events, checkpoints, stop and resume.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.store.campaign import Campaign
from engine.store.checkpoints import complete_checkpoints
from engine.store.jsonl import read_jsonl
from engine.store.metrics import read_metrics, series
from engine.worker import train
from tests.helpers import events, grpo_rows, preference_rows, write_jsonl

TRAIN = (
    "[train]\nlearning_rate = 5e-3\nbatch_size = 8\nmax_steps = {steps}\nlogging_steps = {log}\n"
    "save_steps = {save}\nseed = 0\n"
)
REWARDS = '[[method.rewards]]\nfn = "exact_match"\n[[method.rewards]]\nfn = "length"\nmax_chars = 9\nweight = 0.5\n'


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Campaign:
    camp = Campaign.create(tmp_path_factory.mktemp("trl") / "campaign", "trl", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "pref.jsonl", preference_rows(160, seed=1))
    write_jsonl(camp.root / "datasets" / "grpo.jsonl", grpo_rows(96, seed=1))
    write_jsonl(camp.root / "datasets" / "grpo-heldout.jsonl", grpo_rows(12, seed=2))
    return camp


@pytest.fixture(autouse=True)
def _keep_sigterm() -> Iterator[None]:
    """The worker takes over SIGTERM (a stop request); give this process its own back."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def new_run(campaign: Campaign, name: str, head: str, steps: int = 20, log: int = 5, save: int = 10) -> Path:
    run_dir = campaign.run(name).root
    run_dir.mkdir(parents=True)
    (run_dir / "run.toml").write_text(head + TRAIN.format(steps=steps, log=log, save=save), encoding="utf-8")
    return run_dir


def values(run_dir: Path, metric: str) -> list[float]:
    return [v for _, v in series(read_metrics(run_dir / "metrics.jsonl"), metric)]


def test_dpo_learns_the_preference_and_logs_trls_keys(campaign: Campaign) -> None:
    run_dir = new_run(campaign, "dpo", 'dataset = "datasets/pref.jsonl"\neval_fraction = 0.1\nmethod = "dpo"\n')
    assert train.main([str(run_dir)]) == 0
    margins = values(run_dir, "rewards/margins")
    assert len(margins) == 4
    assert margins[-1] > margins[0] + 1.0, margins  # the preference margin opens
    assert values(run_dir, "rewards/accuracies")[-1] >= 0.9
    first = read_metrics(run_dir / "metrics.jsonl")[0]
    keys = {"loss", "rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected", "mean_token_accuracy"}
    assert keys <= set(first)
    assert {"eval_loss", "eval_rewards/margins"} <= set(first)  # TRL's eval records, as named
    assert [e["event"] for e in events(run_dir)] == ["started", "checkpoint", "checkpoint", "finished"]
    assert (run_dir / "adapter" / "adapter_config.json").is_file()


def test_orpo_learns_the_preference(campaign: Campaign) -> None:
    run_dir = new_run(campaign, "orpo", 'dataset = "datasets/pref.jsonl"\n[method]\nname = "orpo"\nbeta = 1.0\n')
    assert train.main([str(run_dir)]) == 0
    margins = values(run_dir, "rewards/margins")
    assert margins[-1] > margins[0] + 1.0, margins
    nll = values(run_dir, "nll_loss")
    assert nll[-1] < nll[0], nll
    assert "log_odds_ratio" in read_metrics(run_dir / "metrics.jsonl")[0]


@pytest.mark.parametrize(("method", "key"), [("kto", "kl"), ("cpo", "nll_loss")])
def test_kto_and_cpo_train_too(campaign: Campaign, method: str, key: str) -> None:
    run_dir = new_run(
        campaign, method, f'dataset = "datasets/pref.jsonl"\nmethod = "{method}"\n', steps=4, log=2, save=4
    )
    assert train.main([str(run_dir)]) == 0
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records if "loss" in r] == [2, 4]
    assert key in records[0]
    assert events(run_dir)[-1]["event"] == "finished"


def test_a_stopped_dpo_run_resumes_from_its_checkpoint(campaign: Campaign) -> None:
    run_dir = new_run(
        campaign, "dpo-stop", 'dataset = "datasets/pref.jsonl"\nmethod = "dpo"\n', steps=6, log=2, save=100
    )
    (run_dir / "stop.request").write_text(json.dumps({"reason": "asked at once"}))
    assert train.main([str(run_dir)]) == 0
    stopped = events(run_dir)[-1]
    assert (stopped["event"], stopped["step"], stopped["reason"]) == ("stopped", 1, "asked at once")
    assert sorted(complete_checkpoints(run_dir / "checkpoints")) == [1]
    assert not (run_dir / "adapter").exists()
    assert train.main([str(run_dir), "--resume"]) == 0
    kinds = [e["event"] for e in events(run_dir)]
    assert kinds[-4:] == ["resumed", "started", "checkpoint", "finished"]
    assert events(run_dir)[-3]["step"] == 1  # started again from the checkpoint, not from 0
    assert [step for step, _ in series(read_metrics(run_dir / "metrics.jsonl"), "loss")] == [2, 4, 6]


GRPO_HEAD = (
    'dataset = "datasets/grpo.jsonl"\neval_dataset = "datasets/grpo-heldout.jsonl"\n'
    '[method]\nname = "grpo"\nmax_completion_length = 8\n[method.eval]\nevery_steps = 2\n' + REWARDS
)


def raw_lines(run_dir: Path) -> list[dict[str, Any]]:
    return read_jsonl(run_dir / "metrics.jsonl")


TRAINER_KEYS = {
    "loss", "grad_norm", "learning_rate", "reward", "reward_std", "frac_reward_zero_std",
    "rewards/exact_match/mean", "rewards/exact_match/std", "rewards/length/mean", "rewards/length/std",
    "completions/mean_length", "completions/clipped_ratio", "entropy", "step_time",
}  # fmt: skip
EVAL_KEYS = {"eval/len3", "eval/len4", "eval/len5", "eval/mean_reward"}


def test_grpo_logs_rewards_per_function_and_task_and_eval_records_never_take_the_trainers(campaign: Campaign) -> None:
    run_dir = new_run(campaign, "grpo", GRPO_HEAD, steps=6, log=2, save=6)
    assert train.main([str(run_dir)]) == 0
    lines = raw_lines(run_dir)
    trainer_lines = [line for line in lines if "loss" in line]
    eval_lines = [line for line in lines if "eval/mean_reward" in line]
    # Every logged step has its complete trainer record AND its complete eval record.
    assert [line["step"] for line in trainer_lines] == [2, 4, 6]
    assert [line["step"] for line in eval_lines] == [0, 2, 4, 6]  # a baseline before the first step
    for line in trainer_lines:
        assert set(line) >= TRAINER_KEYS, TRAINER_KEYS - set(line)
        assert any(key.startswith("task_reward/") for key in line)
        assert not any(key.startswith("eval/") for key in line)
    for line in eval_lines:
        assert set(line) - {"step", "ts", "epoch", "num_input_tokens_seen"} == EVAL_KEYS
        assert 0.0 <= line["eval/mean_reward"] <= 1.5
    assert events(run_dir)[-1]["event"] == "finished"


class _NaiveEval:
    """The two traps, on purpose: log through the trainer's own log() and leave should_log cleared."""

    @staticmethod
    def install(monkeypatch: pytest.MonkeyPatch) -> None:
        from engine.worker import eval_rewards

        def naive(self: Any, control: Any) -> None:
            assert self.trainer is not None
            self.trainer.log(self.evaluate())

        monkeypatch.setattr(eval_rewards.EvalRewardCallback, "_evaluate_and_log", naive)


def test_the_completeness_check_catches_the_traps(campaign: Campaign, monkeypatch: pytest.MonkeyPatch) -> None:
    _NaiveEval.install(monkeypatch)
    run_dir = new_run(campaign, "grpo-naive", GRPO_HEAD, steps=4, log=2, save=100)
    assert train.main([str(run_dir)]) == 0
    trainer_lines = [line for line in raw_lines(run_dir) if "loss" in line]
    # The trainer's own records of steps 2 and 4 are gone (should_log cleared), and the eval lines
    # carry the trainer's pending metrics (its log() took them): what the test above rules out.
    assert [line["step"] for line in trainer_lines] == []
    assert any("reward" in line and "eval/mean_reward" in line for line in raw_lines(run_dir))
