"""``tunedeck decide`` on the sessions: each V4.1 scenario from an imported trainer_state.json, BD6.8D2's rank
bump, --answer, --replay, the saved walks, and ``run --from-decision`` (comments kept, nothing overwritten).

The sessions are copied to tmp_path first: decide saves its walks in the run's folder.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.api import DecisionWalk
from engine.store.campaign import Campaign
from engine.store.config import RunConfig, load_toml
from tests.decide_fixtures import BD6_SESSION, DECIDE_DATA, TREES, V41_SESSION, copy_session, tree_campaign
from tests.helpers import tunedeck, tunedeck_here

SCENARIOS = [
    # (fixture, leaf, a reason the walk must quote)
    ("scenario_a", "scenario-a", "eval/mean_reward at step 600 = 0.58 >= 0.55"),
    ("scenario_b", "scenario-b", "eval/extraction at step 600 = 0.17 (logged at step 200) < 0.2"),
    ("scenario_c_extraction", "scenario-c-extraction", "eval/extraction at step 600 = 0.21 < 0.25"),
    ("scenario_c_sql_qa", "scenario-c-sql_qa", "eval/sql_qa at step 600 = 0.15 < 0.2"),
    ("scenario_c_insights", "scenario-c-insights", "eval/insights at step 600 = 0.14 < 0.2"),
]


def imported(campaign: Campaign, fixture: str, run: str = "v4.1") -> None:
    source = DECIDE_DATA / f"{fixture}.json"
    done = tunedeck_here("import", "trainer-state", str(source), "--run", run, "--campaign", str(campaign.root))
    assert done.returncode == 0, done.stderr


def decide(campaign: Campaign, run: str, *args: str, code: int = 0, here: bool = True) -> dict[str, Any]:
    """The walk ``tunedeck decide RUN --json`` prints (validated against its model)."""
    command = ("decide", run, *args, "--json", "--campaign", str(campaign.root))
    done: subprocess.CompletedProcess[str] = tunedeck_here(*command) if here else tunedeck(*command)
    assert done.returncode == code, done.stderr
    DecisionWalk.model_validate_json(done.stdout)
    return dict(json.loads(done.stdout))


@pytest.fixture
def v41(tmp_path: Path) -> Campaign:
    return copy_session(V41_SESSION, tmp_path / "v4_1")


@pytest.fixture
def bd6(tmp_path: Path) -> Campaign:
    return copy_session(BD6_SESSION, tmp_path / "bd6")


@pytest.mark.parametrize(("fixture", "leaf", "reason"), SCENARIOS, ids=[s[1] for s in SCENARIOS])
def test_each_v41_scenario_gets_its_leaf_with_the_deciding_values(
    v41: Campaign, fixture: str, leaf: str, reason: str
) -> None:
    imported(v41, fixture)
    walk = decide(v41, "v4.1")
    assert (walk["status"], walk["recommendation"]["id"], walk["questions"]) == ("recommended", leaf, [])
    assert reason in walk["recommendation"]["reasons"]
    assert walk["path"][0] == "target"
    assert walk["path"][-1] == leaf
    assert [step["node"] for step in walk["steps"]] == walk["path"]
    assert (v41.run("v4.1").root / "decisions" / "0001.json").is_file()


def test_scenario_a_carries_the_handoffs_37b_values_through_the_real_cli(v41: Campaign) -> None:
    done = tunedeck("import", "trainer-state", str(DECIDE_DATA / "scenario_a.json"), "--run", "v4.1",
                    "--campaign", str(v41.root))  # fmt: skip
    assert done.returncode == 0, done.stderr
    patch = decide(v41, "v4.1", here=False)["recommendation"]["config_patch"]
    assert patch["base"] == "Polygl0t/Tucano2-qwen-3.7B-Instruct"
    assert patch["train"] == {"learning_rate": 2e-6, "max_steps": 400}
    assert patch["method"] == {"num_generations": 8, "max_completion_length": 1024}
    facts = decide(v41, "v4.1")["facts"]
    assert facts["eval_600"] == {
        "kind": "metric_at", "label": "eval/mean_reward at step 600", "run": "v4.1", "known": True, "value": 0.58,
        "detail": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("fixture", "node", "key", "answer", "leaf"),
    [
        ("ambiguous", "ask-improved", "improved", "no", "extraction-stuck"),  # best 0.495: between the bands
        ("no_eval", "ask-target", "target", "yes", "scenario-a"),  # eval/mean_reward never logged
        ("no_tasks", "ask-task", "task", "insights", "scenario-c-insights"),  # no per-task breakdown
    ],
)
def test_ambiguous_or_missing_facts_lead_to_an_ask_then_the_answer_decides(
    v41: Campaign, fixture: str, node: str, key: str, answer: str, leaf: str
) -> None:
    imported(v41, fixture)
    walk = decide(v41, "v4.1", code=3)
    assert (walk["status"], walk["recommendation"], walk["path"][-1]) == ("question", None, node)
    assert [q["key"] for q in walk["questions"]] == [key]
    answered = decide(v41, "v4.1", "--answer", f"{key}={answer}", code=0 if leaf.startswith("scenario") else 3)
    assert leaf in answered["path"]
    assert answered["answers"] == {key: answer}


def test_an_unknown_fact_without_an_unknown_branch_stops_the_walk(tmp_path: Path) -> None:
    text = (TREES / "ok.toml").read_text(encoding="utf-8")
    campaign = tree_campaign(tmp_path / "c", text.replace('else = "bad"\nunknown = "ask"', 'else = "ask"'))
    walk = decide(campaign, "r1", code=3)  # r1 logged no loss at all
    assert (walk["status"], walk["path"], walk["questions"], walk["recommendation"]) == ("unknown", ["check"], [], None)
    assert (
        walk["stopped"]
        == "check: last loss is unknown (loss was never logged for r1) and the node has no unknown branch"
    )
    assert (walk["steps"][0]["branch"], walk["facts"]["last_loss"]["known"]) == (None, False)


def test_an_answer_for_an_unknown_key_or_choice_is_bad_input(v41: Campaign) -> None:
    imported(v41, "ambiguous")
    for answer, words in (("improvd=yes", "no ask node has the key 'improvd'"), ("improved=maybe", "'maybe' is not")):
        done = tunedeck_here("decide", "v4.1", "--answer", answer, "--campaign", str(v41.root))
        assert done.returncode == 2
        assert words in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (v41.run("v4.1").root / "decisions").exists()


def test_replay_walks_the_saved_answers_again_and_names_facts_that_changed(v41: Campaign) -> None:
    imported(v41, "ambiguous")
    first = decide(v41, "v4.1", "--answer", "improved=yes", code=3)  # -> weakest task: none lags -> ask
    assert first["walk"] == "0001"
    same = decide(v41, "v4.1", "--replay", "1", code=3)
    assert (same["walk"], same["replay_of"], same["answers"], same["changed_facts"]) == (
        "0002", "0001", {"improved": "yes"}, []
    )  # fmt: skip
    assert same["path"] == first["path"]
    imported(v41, "scenario_a")  # new metrics for the same steps: later values win
    replayed = decide(v41, "v4.1", "--replay", "0001")
    assert replayed["recommendation"]["id"] == "scenario-a"
    changed = {c["fact"]: (c["before"], c["after"]) for c in replayed["changed_facts"]}
    assert changed["eval_600"] == (0.495, 0.58)
    listed = json.loads((v41.run("v4.1").root / "decisions" / "0003.json").read_text())
    assert listed["replay_of"] == "0001"
    assert sorted(p.name for p in (v41.run("v4.1").root / "decisions").iterdir()) == [
        "0001.json", "0002.json", "0003.json"
    ]  # fmt: skip


def test_bd6_8d2_recommends_the_rank_bump_through_the_real_cli(bd6: Campaign) -> None:
    walk = decide(bd6, "bd6.8d2", here=False)
    rec = walk["recommendation"]
    assert rec["id"] == "rank-bump"
    assert rec["config_patch"]["lora"] == {"r": 16, "alpha": 32}
    assert rec["config_patch"]["dataset"] == "datasets/bd6_5_mixed_train.jsonl"
    bd6_8d = load_toml(bd6.run("bd6.8d").run_toml, RunConfig).weights.model_dump(by_alias=True, exclude_none=True)
    assert rec["config_patch"]["weights"] == bd6_8d  # BD6.8D's weight policy, not BD6.8D2's
    assert walk["path"] == ["gate", "noise", "saturated", "rank", "rank-bump"]
    reasons = "\n".join(rec["reasons"])
    assert "bd6.8d2 passes the gate: no (anchors 13/19" in reasons
    assert "replication 15 (bd6.5), kl 15 (bd6.5), token_weighted_ce 15 (bd6.8d)): all equal" in reasons
    assert "decoder noise, not the lever) = 2 (humaneval:HumanEval/34, humaneval:HumanEval/45)" in reasons
    assert "run.toml lora.r = 8 < 16" in reasons


def test_from_decision_writes_the_next_run_keeping_comments(bd6: Campaign) -> None:
    source = bd6.run("bd6.8d2").run_toml
    source.write_text("# the over-tuned pass\n" + source.read_text().replace("r = 8", "r = 8  # capacity?"))
    decide(bd6, "bd6.8d2")
    done = tunedeck("run", "--from-decision", "bd6.8d2", "bd6.8d-rank", "--campaign", str(bd6.root))
    assert done.returncode == 0, done.stderr
    assert "start it: tunedeck run runs/bd6.8d-rank/run.toml" in done.stdout
    text = bd6.run("bd6.8d-rank").run_toml.read_text()
    assert "# the over-tuned pass\n" in text
    assert "r = 16  # capacity?" in text
    assert text.startswith("# from tunedeck decide bd6.8d2 (walk 0001): rank-bump")
    config = load_toml(bd6.run("bd6.8d-rank").run_toml, RunConfig)
    assert (config.parent, config.lora.r, config.lora.alpha) == ("bd6.8d2", 16, 32.0)
    assert [(r.task_id, r.weight) for r in config.weights.rules] == [
        ("MBPP/53", 2.0),
        ("HumanEval/85", 2.0),
        (None, 0.5),
    ]
    assert not (bd6.run("bd6.8d-rank").root / "metrics.jsonl").exists()  # written, not started

    again = tunedeck_here("run", "--from-decision", "bd6.8d2", "bd6.8d-rank", "--campaign", str(bd6.root))
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert bd6.run("bd6.8d-rank").run_toml.read_text() == text  # nothing overwritten


def test_from_decision_refuses_a_walk_without_a_recommendation(v41: Campaign) -> None:
    imported(v41, "no_eval")
    decide(v41, "v4.1", code=3)
    done = tunedeck_here("run", "--from-decision", "v4.1", "v4.2", "--campaign", str(v41.root))
    assert done.returncode == 1
    assert "reached no recommendation" in done.stderr
    assert not v41.run("v4.2").root.exists()


def test_from_decision_refuses_a_patch_that_does_not_validate(bd6: Campaign) -> None:
    tree = bd6.root / "tree.toml"
    tree.write_text(tree.read_text(encoding="utf-8").replace("r = 16\n", "r = 0\n"), encoding="utf-8")
    decide(bd6, "bd6.8d2")
    refused = tunedeck_here("run", "--from-decision", "bd6.8d2", "bd6.8d-rank", "--campaign", str(bd6.root))
    assert refused.returncode == 2
    assert (
        "runs/bd6.8d-rank/run.toml:8: lora.r: rank-bump's config_patch makes a run.toml that does not" in refused.stderr
    )
    assert not bd6.run("bd6.8d-rank").root.exists()


def test_from_decision_on_scenario_a_writes_the_37b_grpo_run(v41: Campaign) -> None:
    imported(v41, "scenario_a")
    decide(v41, "v4.1")
    assert tunedeck_here("run", "--from-decision", "v4.1", "v4.2", "--campaign", str(v41.root)).returncode == 0
    config = load_toml(v41.run("v4.2").run_toml, RunConfig)
    assert config.base == "Polygl0t/Tucano2-qwen-3.7B-Instruct"
    assert (config.train.learning_rate, config.train.max_steps) == (2e-6, 400)
    method = config.method.model_dump()
    assert (method["name"], method["num_generations"], method["max_completion_length"]) == ("grpo", 8, 1024)


def test_from_decision_applies_unset_keys(v41: Campaign) -> None:
    imported(v41, "scenario_b")
    decide(v41, "v4.1")
    done = tunedeck_here("run", "--from-decision", "v4.1", "v4.2-sft", "--campaign", str(v41.root))
    assert done.returncode == 0, done.stderr
    config = load_toml(v41.run("v4.2-sft").run_toml, RunConfig)
    assert (config.base, config.train.epochs, config.train.max_steps) == ("Polygl0t/Tucano2-qwen-0.5B-Base", 1.0, None)
    assert config.method.model_dump()["name"] == "sft"  # the GRPO [method] table unset: the SFT warm-up first
    assert "# MAX_SEQ_LENGTH" in v41.run("v4.2-sft").run_toml.read_text()
