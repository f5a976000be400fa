"""The sessions' tiny runs: sessions/v4_1 (GRPO), sessions/foundry (ORPO, DPO) and sessions/demo, as committed.

Fast tests check the committed files (the generators' output, every run.toml valid) and the
``[models] tiny`` mechanism's refusals. The slow ones run a copy of each session as it is, through
``tunedeck run`` and the real engine: the declared tiny model is built on first use, and each run
learns (eval reward, preference margins, pass rate) or, deliberately bad, is stopped by a watch rule.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from engine.errors import ConfigError
from engine.runs.launch import prepare_run, tiny_model_folders
from engine.store.campaign import Campaign
from engine.store.jsonl import read_jsonl
from engine.store.metrics import read_metrics, series
from tests.helpers import REPO, stop_engine_and_workers, tunedeck, wait_for

SESSIONS = REPO / "sessions"
TINY = "models/tiny-qwen2"
TINY_RUNS = {
    "v4_1": ["tiny-sft", "tiny-grpo", "tiny-grpo-hack"],
    "foundry": ["tiny-orpo", "tiny-dpo"],
    "demo": ["demo-r1"],
}
V41_TASKS = ("extraction", "sql_qa", "insights", "push")


def load_tool(session: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SESSIONS / session / "tools" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_session(name: str, into: Path) -> Path:
    """A copy of the session as committed: without what running it leaves behind (gitignored)."""
    root = into / name
    produced = shutil.ignore_patterns(".tunedeck", "__pycache__", "models", "checkpoints", "adapter", "merged",
                                      "metrics.jsonl", "decisions", "system.jsonl", "worker.*")  # fmt: skip
    shutil.copytree(SESSIONS / name, root, ignore=produced)
    for run in TINY_RUNS[name]:
        (root / "runs" / run / "events.jsonl").unlink(missing_ok=True)
    if name == "demo":
        shutil.rmtree(root / "bench", ignore_errors=True)
    return root


# -- the committed files -------------------------------------------------------------------------


@pytest.mark.parametrize(("session", "tool"), [("v4_1", "make_tiny"), ("foundry", "make_tiny")])
def test_the_tiny_datasets_are_what_the_generators_write(session: str, tool: str, tmp_path: Path) -> None:
    for path in load_tool(session, tool).write(tmp_path):
        committed = SESSIONS / session / path.relative_to(tmp_path)
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), committed


def test_sessions_demo_is_what_tunedeck_demo_creates(tmp_path: Path) -> None:
    from engine.demo.campaign import write_demo_files

    written = write_demo_files(tmp_path)
    assert len(written) == 5
    for path in written:
        committed = SESSIONS / "demo" / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), committed


def test_the_v4_1_targets_write_pt_br_decimals_and_every_row_names_its_task() -> None:
    sft = read_jsonl(SESSIONS / "v4_1" / "datasets" / "tiny" / "sft.jsonl")
    grpo = read_jsonl(SESSIONS / "v4_1" / "datasets" / "tiny" / "grpo.jsonl")
    held_out = read_jsonl(SESSIONS / "v4_1" / "datasets" / "tiny" / "eval.jsonl")
    json_answers = [row["completion"] for row in sft if row["completion"].startswith("{")]
    assert 0.2 < len(json_answers) / len(sft) < 0.6  # the warm-up answers in JSON only some of the time
    assert any('"nota": 3,5' in a or '"valor": 2,1' in a for a in json_answers)  # "4,5", not 4.5
    assert {row["task"] for row in grpo} == {row["task"] for row in held_out} == set(V41_TASKS)
    assert sorted(row["task"] for row in held_out) == sorted(V41_TASKS * 8)
    assert not {row["prompt"] for row in held_out} & {row["prompt"] for row in sft + grpo}
    assert isinstance(held_out[0]["fields"]["nota"], float)


@pytest.mark.parametrize("session", ["v4_1", "foundry", "demo"])
def test_every_tiny_run_validates_before_its_model_exists(session: str, tmp_path: Path) -> None:
    campaign = Campaign.open(copy_session(session, tmp_path))
    assert tiny_model_folders(campaign) == {campaign.root / TINY}
    assert not (campaign.root / TINY).exists()
    for run in TINY_RUNS[session]:
        if campaign.base_model(campaign.load_run(run)) == campaign.root / TINY:  # its own base or the campaign's
            assert prepare_run(campaign, run).base == campaign.root / TINY
            continue
        # A warm-started run names the merged model of its warm-up, which says what to do first.
        with pytest.raises(ConfigError, match=r"train run 'tiny-sft' and merge it first \(tunedeck merge tiny-sft\)"):
            prepare_run(campaign, run)


def test_only_declared_folders_pass_a_misspelt_base_stays_an_error(tmp_path: Path) -> None:
    campaign = Campaign.open(copy_session("foundry", tmp_path))
    toml = campaign.run("tiny-orpo").run_toml
    toml.write_text(toml.read_text().replace(f'base = "{TINY}"', 'base = "models/tiny-qwen"'))
    with pytest.raises(ConfigError) as caught:
        prepare_run(campaign, "tiny-orpo")
    assert caught.value.field == "base"
    assert f"not a model folder (no config.json): {campaign.root / 'models' / 'tiny-qwen'}" in caught.value.message


@pytest.mark.parametrize(
    ("value", "why"),
    [('["/tmp/m"]', "a folder inside the campaign"), ('["../m"]', "a folder inside the campaign"),
     ('["models/m", "models/m"]', "listed twice"), ('"models/m"', "valid list")],
)  # fmt: skip
def test_models_tiny_refuses_a_folder_outside_the_campaign(tmp_path: Path, value: str, why: str) -> None:
    (tmp_path / "campaign.toml").write_text(f'name = "x"\n\n[models]\ntiny = {value}\n')
    done = tunedeck("status", "--campaign", str(tmp_path))
    assert done.returncode == 2
    assert "campaign.toml:4: models.tiny" in done.stderr, done.stderr
    assert why in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# -- building the tiny model on first use -------------------------------------------------------

BUILD = """
import sys
from pathlib import Path
from engine.store.campaign import Campaign
from engine.worker.tiny_base import ensure_tiny_base
campaign = Campaign.open(sys.argv[1])
print(ensure_tiny_base(campaign, campaign.root / "models" / "tiny-qwen2"))
"""


@pytest.mark.slow
def test_two_workers_at_once_build_the_declared_model_once(tmp_path: Path) -> None:
    root = copy_session("foundry", tmp_path)
    builders = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD, str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [b.communicate(timeout=180) for b in builders]
    assert [b.returncode for b in builders] == [0, 0], [err for _, err in outputs]
    assert sorted(out.strip() for out, _ in outputs) == ["False", "True"]  # one built it, the other waited
    model = root / TINY
    assert (model / "config.json").is_file()
    assert (model / "model.safetensors").is_file()
    assert sorted(p.name for p in model.parent.iterdir()) == [".tiny-qwen2.build.lock", "tiny-qwen2"]  # no partial


# -- running the copies through tunedeck run and the engine ----------------------------------------


def cli(root: Path, *args: str, code: int = 0) -> Any:
    done = tunedeck(*args, "--campaign", str(root), "--json", timeout=300)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def train(root: Path, run: str, *, until: str = "finished", timeout: float = 240) -> None:
    """``tunedeck run runs/<run>/run.toml`` as committed, then wait for the run to end as ``until``."""
    cli(root, "run", str(root / "runs" / run / "run.toml"))
    ended = wait_for(
        lambda: (s := cli(root, "status", run)["state"]) in ("finished", "failed", "stopped") and s,
        timeout=timeout,
        what=f"{run} to end",
        poll=0.5,
    )
    assert ended == until, (ended, (root / "runs" / run / "worker.log").read_text(errors="replace")[-2000:])


def values(root: Path, run: str, metric: str) -> list[tuple[int, float]]:
    return [(step, float(v)) for step, v in series(read_metrics(root / "runs" / run / "metrics.jsonl"), metric)]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path (a Unix socket path is limited to 107 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="td-tiny-", dir="/tmp"))
    yield root
    for campaign in root.iterdir():
        stop_engine_and_workers(campaign)
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_v4_1_tiny_grpo_learns_per_task_decide_reads_it_and_the_hack_is_stopped(short_dir: Path) -> None:
    root = copy_session("v4_1", short_dir)
    train(root, "tiny-sft")  # builds the declared tiny model first
    assert (root / TINY / "config.json").is_file()
    assert max(v for _, v in values(root, "tiny-sft", "grad_norm")) < 2.0  # the grad-spike rule leaves it alone
    cli(root, "merge", "tiny-sft")
    train(root, "tiny-grpo")

    mean = values(root, "tiny-grpo", "eval/mean_reward")
    assert [step for step, _ in mean] == [0, 10, 20, 30, 40]
    assert mean[-1][1] >= mean[0][1] + 0.15, mean  # the JSON format is learned: about 0.05 -> 0.30
    for task in V41_TASKS:
        assert [step for step, _ in values(root, "tiny-grpo", f"eval/{task}")] == [0, 10, 20, 30, 40], task
    assert all(a["action"] == "warn" for a in cli(root, "watch", "tiny-grpo")["alerts"])

    walk = _decide(root)
    facts = walk["facts"]
    last = {task: values(root, "tiny-grpo", f"eval/{task}")[-1][1] for task in V41_TASKS}
    for task in V41_TASKS:
        assert (facts[f"{task}_600"]["known"], facts[f"{task}_600"]["value"]) == (True, last[task]), task
    assert facts["eval_600"]["value"] == facts["eval_best"]["value"] == mean[-1][1]
    assert facts["weakest"]["known"]
    assert facts["weakest"]["value"] == f"eval/{min(last, key=last.__getitem__)}"
    assert walk["path"][0] == "target"
    assert walk["status"] in ("recommended", "question")

    # Deliberately bad: the brevity reward is hacked, and the length-collapse rule stops the run.
    train(root, "tiny-grpo-hack", until="stopped")
    stopped = read_jsonl(root / "runs" / "tiny-grpo-hack" / "events.jsonl")[-1]
    assert stopped["event"] == "stopped", stopped
    assert "length-collapse" in stopped["reason"], stopped
    lengths = values(root, "tiny-grpo-hack", "completions/mean_length")
    zero_std = values(root, "tiny-grpo-hack", "frac_reward_zero_std")
    assert lengths[0][1] > 15, lengths
    assert lengths[-1][1] < 8, lengths  # collapsing ...
    assert zero_std[-1][1] >= 0.75 > zero_std[0][1] - 0.25, zero_std  # ... while frac_reward_zero_std climbs
    alerts = {a["rule"]: a for a in cli(root, "watch", "tiny-grpo-hack")["alerts"]}
    assert alerts["length-collapse"]["action"] == "stop"
    assert alerts["length-collapse"]["first_step"] <= stopped["step"] < 30


def _decide(root: Path) -> Any:
    """``tunedeck decide tiny-grpo --json``: exit 0 with a recommendation, 3 at a question."""
    done = tunedeck("decide", "tiny-grpo", "--campaign", str(root), "--json")
    assert done.returncode in (0, 3), done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_foundry_tiny_orpo_and_dpo_open_the_preference_margin(short_dir: Path) -> None:
    root = copy_session("foundry", short_dir)
    for run in ("tiny-orpo", "tiny-dpo"):
        train(root, run)
        margins = [v for _, v in values(root, run, "rewards/margins")]
        held_out = [v for _, v in values(root, run, "eval_rewards/margins")]
        assert (len(margins), len(held_out)) == (8, 4), run
        assert margins[-1] > 2 * margins[0] > 0, (run, margins)  # ORPO ~0.03 -> 0.08 (beta 0.1), DPO ~0.3 -> 5.5
        assert held_out[-1] > 1.5 * held_out[0], (run, held_out)
        assert values(root, run, "rewards/accuracies")[-1][1] == 1.0
    # The ledger is untouched: its 19 runs are still finished, and the tiny ones declare no cost.
    status = cli(root, "status")
    assert sum(r["state"] == "finished" for r in status["runs"]) == 21
    assert round(status["cost_total"]["total_usd"], 2) == 152.7


@pytest.mark.slow
def test_sessions_demo_runs_merges_and_benches_as_committed(short_dir: Path) -> None:
    root = copy_session("demo", short_dir)
    train(root, "demo-r1")
    losses = values(root, "demo-r1", "loss")
    assert losses[0][1] > 4.0 > 0.1 > losses[-1][1], losses
    merged = cli(root, "merge", "demo-r1")
    assert merged["max_logit_diff"] < 1e-3
    bench = cli(root, "bench", "run", "demo-r1", "--suite", str(root / "suites" / "demo.jsonl"))
    assert {name: (b["passed"], b["total"]) for name, b in bench["benches"].items()} == {
        "reverse": (24, 24),
        "reverse-tests": (16, 16),
    }
