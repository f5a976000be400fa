"""``[cost]`` in run.toml: declared per run, summed per campaign by ``tunedeck status --json`` (never invented)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.api import RunCost
from engine.runs.costs import run_cost, sum_costs
from engine.store.campaign import Campaign
from engine.store.config import CostSettings
from tests.helpers import tunedeck

RUN = 'dataset = "d.jsonl"\n'


def add_run(root: Path, name: str, text: str) -> None:
    (root / "runs" / name).mkdir(parents=True)
    (root / "runs" / name / "run.toml").write_text(text, encoding="utf-8")


def test_undeclared_figures_stay_none_in_sums() -> None:
    a = run_cost(CostSettings(gpu_hours=2.0, training_usd=3.5))
    b = run_cost(CostSettings(eval_usd=1.25))
    none = {"eval_usd": None, "data_usd": None, "judge_usd": None, "generation_s": None, "judging_s": None}
    assert a == RunCost(gpu_hours=2.0, training_usd=3.5, **none, total_usd=3.5)
    total = sum_costs([a, b])
    assert total == RunCost(**{**none, "eval_usd": 1.25}, gpu_hours=2.0, training_usd=3.5, total_usd=4.75)
    assert sum_costs([]) == RunCost(gpu_hours=None, training_usd=None, **none, total_usd=None)


def test_status_json_sums_per_run_and_per_campaign(tmp_path: Path) -> None:
    root = Campaign.create(tmp_path / "c", "costs").root
    add_run(root, "r1", RUN + "[cost]\ngpu_hours = 1.5\ntraining_usd = 2.25\ndata_usd = 10\n")
    add_run(root, "r2", RUN + "[cost]\neval_usd = 0.75\nnote = 'judge calls'\n")
    add_run(root, "r3", RUN)
    done = tunedeck("status", "--campaign", str(root), "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert [r["run"] for r in answer["runs"]] == ["r1", "r2", "r3"]
    assert answer["costs"]["r1"]["total_usd"] == 12.25
    assert answer["costs"]["r2"] == {
        "gpu_hours": None,
        "training_usd": None,
        "eval_usd": 0.75,
        "data_usd": None,
        "judge_usd": None,
        "total_usd": 0.75,
        "generation_s": None,
        "judging_s": None,
    }
    assert "r3" not in answer["costs"]
    assert answer["cost_total"] == {
        "gpu_hours": 1.5,
        "training_usd": 2.25,
        "eval_usd": 0.75,
        "data_usd": 10.0,
        "judge_usd": None,
        "total_usd": 13.0,
        "generation_s": None,
        "judging_s": None,
    }
    text = tunedeck("status", "--campaign", str(root)).stdout
    assert "cost: $13.00, 1.5 GPU h over 2 run(s) with a [cost] or a measured bench" in text


@pytest.mark.parametrize(
    ("cost", "field"),
    [("training_usd = -1", "cost.training_usd"), ("gpu_hours = nan", "cost.gpu_hours"), ("dolars = 3", "cost.dolars")],
)
def test_a_bad_cost_is_named_and_does_not_hide_the_other_runs(tmp_path: Path, cost: str, field: str) -> None:
    root = Campaign.create(tmp_path / "c", "costs").root
    add_run(root, "good", RUN + "[cost]\ntraining_usd = 4\n")
    add_run(root, "bad", RUN + f"[cost]\n{cost}\n")
    done = tunedeck("status", "--campaign", str(root), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cost_total"]["total_usd"] == 4.0
    warning = done.stderr.strip().splitlines()
    assert len(warning) == 1
    assert warning[0].startswith(f"tunedeck: cost of bad not counted: {root / 'runs' / 'bad' / 'run.toml'}:3: {field}")


def test_the_judge_spend_bench_judge_measured_is_summed(tmp_path: Path) -> None:
    root = Campaign.create(tmp_path / "c", "costs").root
    add_run(root, "declared", RUN + "[cost]\ntraining_usd = 2\n")
    add_run(root, "judged", RUN)
    events = [
        {"ts": 1.0, "event": "bench_judge", "cost_usd": 0.25, "judged": 36},
        {"ts": 2.0, "event": "bench_judge", "cost_usd": 0.5, "judged": 36},  # judged again: paid again
        {"ts": 3.0, "event": "bench_judge", "cost_usd": None},  # a judge without prices
        {"ts": 3.5, "event": "bench", "generation_s": 4.25},
        {"ts": 3.6, "event": "bench_judge", "generation_s": 2.0, "judging_s": -1},  # nonsense is not counted
    ]
    text = "".join(json.dumps(e) + "\n" for e in events) + '{"ts": 4.0, "event": "bench_ju'  # a torn last line
    (root / "runs" / "judged" / "events.jsonl").write_text(text)
    done = tunedeck("status", "--campaign", str(root), "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["costs"]["judged"]["judge_usd"] == 0.75
    assert answer["costs"]["judged"]["total_usd"] == 0.75
    assert (answer["cost_total"]["judge_usd"], answer["cost_total"]["total_usd"]) == (0.75, 2.75)
    assert (answer["costs"]["judged"]["generation_s"], answer["costs"]["judged"]["judging_s"]) == (6.25, None)
