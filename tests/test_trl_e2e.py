"""DPO, ORPO and GRPO runs through `tunedeck run` and the real engine, and GRPO learning after an SFT warm-up.

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

import httpx
import pytest
from httpx_sse import connect_sse

from engine.demo.reverse_task import reverse_rows
from engine.demo.suite import write_demo_suite
from engine.store.campaign import Campaign, engine_paths
from engine.store.checkpoints import complete_checkpoints
from engine.store.jsonl import read_jsonl
from engine.store.metrics import read_metrics, series
from tests.helpers import grpo_rows, preference_rows, stop_engine_and_workers, tunedeck, wait_for, write_jsonl

pytestmark = pytest.mark.slow

# Per method: its run.toml head, a watch rule on one of TRL's own keys for that method, and that key.
# DPO's and ORPO's rules hold from the first logged value (log-probs are < 0, the NLL > 0), so they
# fire as soon as the run passes after_step; GRPO's fires because an untrained model earns no
# exact-match reward: every group's rewards are equal, no signal (the V4.1 "zero std" alarm).
METHODS = {
    "dpo": (
        'dataset = "datasets/pref.jsonl"\nmethod = "dpo"\n',
        'metric = "logps/chosen"\nbelow = 0\nafter_step = 6\n',
        "rewards/margins",
    ),
    "orpo": (
        'dataset = "datasets/pref.jsonl"\n[method]\nname = "orpo"\nbeta = 1.0\n',
        'metric = "nll_loss"\nabove = 0\nafter_step = 6\n',
        "log_odds_ratio",
    ),
    "grpo": (
        'dataset = "datasets/grpo.jsonl"\n[method]\nname = "grpo"\nmax_completion_length = 8\n'
        '[[method.rewards]]\nfn = "exact_match"\n',
        'metric = "frac_reward_zero_std"\nat_least = 0.9\n',
        "frac_reward_zero_std",
    ),
}
TRAIN = """[train]
learning_rate = 5e-3
batch_size = 8
max_steps = {steps}
logging_steps = 2
save_steps = 1000
"""
GRPO_RUN = METHODS["grpo"][0] + TRAIN


@pytest.fixture
def campaign(tiny_model: Path) -> Iterator[Campaign]:
    """A campaign in a short path (Unix socket paths are limited to 107 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="td-trl-", dir="/tmp"))
    camp = Campaign.create(root / "c", "trl e2e", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "grpo.jsonl", grpo_rows(64, seed=1))
    write_jsonl(camp.root / "datasets" / "pref.jsonl", preference_rows(96, seed=1))
    write_demo_suite(camp.root / "suites" / "demo.jsonl", 6)
    yield camp
    stop_engine_and_workers(camp.root)
    shutil.rmtree(root, ignore_errors=True)


def cli(campaign: Campaign, *args: str) -> Any:
    done = tunedeck(*args, "--campaign", str(campaign.root), "--json", timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def stream_until_alert(campaign: Campaign, run: str, timeout: float = 150.0) -> list[tuple[str, dict[str, Any]]]:
    """The run's live stream from the engine's socket, read until its first alert."""
    socket_path = engine_paths(campaign.root).socket
    seen: list[tuple[str, dict[str, Any]]] = []
    transport = httpx.HTTPTransport(uds=str(socket_path))
    with (
        httpx.Client(transport=transport, base_url="http://engine", timeout=timeout) as http,
        connect_sse(http, "GET", f"/runs/{run}/stream") as source,
    ):
        for event in source.iter_sse():
            seen.append((event.event, json.loads(event.data)))
            if event.event == "alert" or seen[-1][1].get("event") == "alert":
                break
    return seen


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_trl_run_streams_is_stopped_by_a_watch_rule_resumes_merges_and_benches(
    campaign: Campaign, method: str
) -> None:
    head, rule, key = METHODS[method]
    toml = campaign.root / "campaign.toml"
    others = sorted(set(METHODS) - {method})
    # The same condition scoped to the other methods (and to other runs): the engine must not apply it here.
    watch = (
        f'\n[[watch]]\nname = "{method}-rule"\n{rule}action = "stop"\nmethods = ["{method}"]\nruns = ["{method}*"]\n'
        f'\n[[watch]]\nname = "not-this-method"\n{rule}action = "stop"\nmethods = {json.dumps(others)}\n'
        f'\n[[watch]]\nname = "not-this-run"\n{rule}action = "stop"\nruns = ["other-*"]\n'
    )
    toml.write_text(toml.read_text() + watch)
    run_toml = campaign.root / f"{method}.toml"
    run_toml.write_text(head + TRAIN.format(steps=400))
    cli(campaign, "run", str(run_toml))
    # Live through the engine: TRL's own keys arrive as they are logged, then the rule's alert.
    streamed = stream_until_alert(campaign, method)
    metrics = [data for kind, data in streamed if kind == "metric"]
    assert any(key in record for record in metrics), metrics[:3]
    assert streamed[-1][1]["rule"] == f"{method}-rule"
    wait_for(lambda: cli(campaign, "status", method)["state"] == "stopped", timeout=150, what="the rule to stop it")
    run_dir = campaign.run(method).root
    run_events = read_jsonl(run_dir / "events.jsonl")
    alert = next(e for e in run_events if e["event"] == "alert")
    assert [e["rule"] for e in run_events if e["event"] == "alert"] == [f"{method}-rule"]
    records = read_metrics(run_dir / "metrics.jsonl")
    assert alert["first_step"] == next(r["step"] for r in records if key in r and r["step"] >= alert["first_step"])
    stopped = run_events[-1]
    assert stopped["event"] == "stopped"
    assert f"{method}-rule" in stopped["reason"]
    assert stopped["step"] in complete_checkpoints(run_dir / "checkpoints")
    assert alert["first_step"] <= stopped["step"] < 400
    # Resumed with the rule removed (it would fire again), the run finishes from its checkpoint.
    toml.write_text(toml.read_text().replace(watch, ""))
    cli(campaign, "engine", "stop")
    in_run = run_dir / "run.toml"
    in_run.write_text(in_run.read_text().replace("max_steps = 400", f"max_steps = {stopped['step'] + 4}"))
    cli(campaign, "resume", method)
    wait_for(lambda: cli(campaign, "status", method)["state"] == "finished", timeout=150, what="the resumed run")
    steps = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl")]
    assert steps[-1] == stopped["step"] + 4
    assert "resumed" in [e["event"] for e in read_jsonl(run_dir / "events.jsonl")]
    # Merged and benchmarked like an SFT run.
    merged = cli(campaign, "merge", method)
    assert merged["max_logit_diff"] <= 1e-3
    assert (run_dir / "merged" / "config.json").is_file()
    bench = cli(campaign, "bench", "run", method, "--suite", str(campaign.root / "suites" / "demo.jsonl"))
    assert (bench["model"], bench["rows"]) == ("merged", 6)
    show = cli(campaign, "bench", "show", method)
    assert {r["run"] for r in show["pass_rates"]} == {method}
    assert sum(r["total"] for r in show["pass_rates"]) == 6


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
