"""engine.runs.config_diff: run.toml resolved, flattened, grouped and compared; and GET /runs/{run}/overview."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import JsonValue

from engine.api import RunOverview
from engine.errors import ConfigError
from engine.runs.config_diff import diff_configs, flatten, resolved_config, section_of, sections
from engine.service.app import create_app
from engine.service.overview_routes import training_seconds
from engine.store.campaign import Campaign
from tests.helpers import REPO


@pytest.fixture
def bd6(tmp_path: Path) -> Campaign:
    root = tmp_path / "bd6"
    shutil.copytree(REPO / "sessions" / "bd6", root)
    return Campaign.open(root)


def test_flatten_dots_tables_indexes_arrays_of_tables_and_keeps_plain_arrays() -> None:
    flat = flatten(
        {
            "lora": {"r": 8, "target_modules": ["q_proj", "v_proj"]},
            "weights": {"default": 1.0, "rules": [{"task_id": "MBPP/53", "class": None, "weight": 2.0}]},
            "replicate": [],
            "kl": {"lambda": 0.0},
        }
    )
    assert flat == {
        "lora.r": 8,
        "lora.target_modules": ["q_proj", "v_proj"],
        "weights.default": 1.0,
        "weights.rules[0].task_id": "MBPP/53",  # the unset condition "class" is left out
        "weights.rules[0].weight": 2.0,
        "replicate": [],
        "kl.lambda": 0.0,
    }


def test_resolved_config_fills_defaults_and_the_campaign_base(tmp_path: Path) -> None:
    campaign = Campaign.create(tmp_path / "c", "c", base="models/tiny")
    run = campaign.run("r1")
    run.root.mkdir(parents=True)
    run.run_toml.write_text(
        'dataset = "d.jsonl"\n[train]\nmax_steps = 40\n[[replicate]]\nclass = "anchor"\nfactor = 2\n'
    )
    flat = resolved_config(campaign, "r1")
    assert flat["name"] == "r1"
    assert flat["base"] == "models/tiny"
    assert flat["train.max_steps"] == 40
    assert flat["train.learning_rate"] == 2e-4
    assert flat["replicate[0].class"] == "anchor"
    assert flat["replicate[0].factor"] == 2.0
    assert flat["kl.lambda"] == 0.0  # keyed as the TOML spells it, not the model's "lam"
    titles = [s.title for s in sections(flat)]
    assert titles == ["Run", "LoRA", "Optimiser", "Schedule", "Weights policy", "Cost and ledger"]
    grouped = {s.title: s.values for s in sections(flat)}
    assert "train.max_steps" in grouped["Schedule"]
    assert "train.learning_rate" in grouped["Optimiser"]
    assert list(grouped["LoRA"]) == ["lora.r", "lora.alpha", "lora.dropout", "lora.target_modules"]


def test_a_method_named_short_or_as_a_table_resolves_the_same(tmp_path: Path) -> None:
    campaign = Campaign.create(tmp_path / "c", "c", base="models/tiny")
    for name, text in (("short", 'method = "dpo"\n'), ("table", '[method]\nname = "dpo"\nbeta = 0.2\n')):
        run = campaign.run(name)
        run.root.mkdir(parents=True)
        run.run_toml.write_text(f'dataset = "d.jsonl"\n{text}')
    short, table = resolved_config(campaign, "short"), resolved_config(campaign, "table")
    assert short["method.name"] == "dpo"
    assert short["method.beta"] == 0.1  # dpo's default, shown although run.toml names the method only
    assert [(c.key, c.value, c.other) for c in diff_configs(table, short)] == [("method.beta", 0.2, 0.1)]
    assert section_of("method.beta") == "Run"
    assert section_of("cost.gpu_hours") == "Cost and ledger"
    assert section_of("some_new_table.key") == "Other"


def test_resolved_config_of_a_bad_run_toml_names_file_line_and_field(tmp_path: Path) -> None:
    campaign = Campaign.create(tmp_path / "c", "c")
    run = campaign.run("bad")
    run.root.mkdir(parents=True)
    run.run_toml.write_text('dataset = "d.jsonl"\n[train]\nbatch_size = "4"\n')
    with pytest.raises(ConfigError) as caught:
        resolved_config(campaign, "bad")
    assert str(caught.value).endswith("run.toml:3: train.batch_size: Input should be a valid integer (got '4')")


def test_diff_lists_added_removed_and_changed_keys_only() -> None:
    mine: dict[str, JsonValue] = {
        "name": "a",
        "lora.r": 16,
        "lora.alpha": 16.0,
        "train.load_in_4bit": True,
        "weights.rules[0].weight": 2.0,
    }
    theirs: dict[str, JsonValue] = {
        "name": "b",
        "lora.r": 8,
        "lora.alpha": 16,
        "train.load_in_4bit": 1,
        "train.seed": 3,
    }
    changes = [(c.key, c.change, c.value, c.other) for c in diff_configs(mine, theirs)]
    assert changes == [
        ("lora.r", "changed", 16, 8),  # 16.0 against 16 is no change; the name is never compared
        ("train.load_in_4bit", "changed", True, 1),  # true is not 1
        ("weights.rules[0].weight", "added", 2.0, None),
        ("train.seed", "removed", None, 3),
    ]
    assert diff_configs(mine, mine) == []


def test_an_empty_array_against_tables_is_the_tables_and_none_is_absent() -> None:
    mine: dict[str, JsonValue] = {"replicate": [], "parent": None}
    theirs: dict[str, JsonValue] = {"replicate[0].class": "anchor", "replicate[0].factor": 1.53}
    assert [(c.key, c.change) for c in diff_configs(mine, theirs)] == [
        ("replicate[0].class", "removed"),
        ("replicate[0].factor", "removed"),
    ]


def test_bd6_8d2_against_production_is_the_weight_rules_it_changed(bd6: Campaign) -> None:
    changes = diff_configs(resolved_config(bd6, "bd6.8d2"), resolved_config(bd6, "bd6.8d"))
    by_key = {c.key: (c.change, c.value, c.other) for c in changes}
    assert by_key["parent"] == ("changed", "bd6.8d", "bd6.5")
    assert by_key["weights.rules[1].weight"] == ("changed", 4.0, 2.0)  # HumanEval/85 x4 instead of x2
    assert by_key["weights.rules[3].task_id"] == ("added", "HumanEval/*", None)
    assert "train.learning_rate" not in by_key
    assert "description" not in by_key


def test_training_seconds_sums_launches_and_counts_a_live_one_to_now() -> None:
    events = [
        {"ts": 100.0, "event": "queued"},
        {"ts": 110.0, "event": "started"},
        {"ts": 170.0, "event": "stopped"},
        {"ts": 200.0, "event": "resumed"},
        {"ts": 201.0, "event": "started"},  # a resume logs both: counted from the first
        {"ts": 230.0, "event": "checkpoint"},
    ]
    assert training_seconds(events, running=True, now=260.0) == 120.0
    assert training_seconds(events[:3], running=False) == 60.0
    assert training_seconds([{"ts": 1.0, "event": "imported"}], running=False) is None


def test_overview_route_answers_config_diff_and_figures(bd6: Campaign) -> None:
    with TestClient(create_app(bd6)) as http:
        candidate = RunOverview.model_validate(http.get("/runs/bd6.8d2/overview").json())
        production = RunOverview.model_validate(http.get("/runs/bd6.8d/overview").json())
        missing = http.get("/runs/nope/overview")
    assert candidate.production == "bd6.8d"
    assert candidate.production_note is None
    assert candidate.production_diff is not None
    assert ("weights.rules[1].weight", 4.0, 2.0) in [(c.key, c.value, c.other) for c in candidate.production_diff]
    assert candidate.summary.gate == "failed"
    assert candidate.summary.pass_rates["humaneval"] == pytest.approx(1 / 6)
    assert [s.title for s in candidate.config][0] == "Run"
    assert candidate.config[0].values["base"] == "models/physarum-0.5b"
    assert production.production_diff is None
    assert production.production_note == "this run is in production"
    assert production.summary.production is True
    assert missing.status_code == 404
    assert "no run named 'nope'" in missing.json()["detail"]


def test_overview_without_production_and_with_a_bad_run_toml(bd6: Campaign) -> None:
    (bd6.root / "production.json").unlink()
    bd6.run("bd6.5").run_toml.write_text("[lora]\nr = -1\n")
    with TestClient(create_app(bd6)) as http:
        none = RunOverview.model_validate(http.get("/runs/bd6.8d2/overview").json())
        bad = http.get("/runs/bd6.5/overview").json()
    assert none.production is None
    assert none.production_diff is None
    assert none.production_note == "no run is in production yet"
    assert bad["config"] == []
    assert bad["config_error"].endswith("run.toml:2: lora.r: Input should be greater than 0 (got -1)")
    assert bad["summary"]["run"] == "bd6.5"  # the figures are still there
