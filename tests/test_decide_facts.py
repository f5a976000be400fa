"""Every fact kind on small real data: a metrics.jsonl written here, and a copy of sessions/bd6's bench rows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from engine.decisions.fact_kinds import FACT_KINDS
from engine.decisions.facts import FactContext, Known, evaluate_fact
from engine.runs.watch import evaluate
from engine.store.campaign import Campaign
from engine.store.metrics import read_metrics
from engine.store.watch_rules import Plateau, WatchRule
from tests.decide_fixtures import BD6_SESSION, copy_session, tree_campaign
from tests.helpers import write_jsonl

# eval/mean_reward every 10 steps; step 30 logged twice (a resume: the later 0.45 wins); loss NaN at 20.
METRICS: list[dict[str, Any]] = [
    {"step": 10, "loss": 2.0, "eval/mean_reward": 0.30, "eval/extraction": 0.17, "eval/push": 0.5},
    {"step": 20, "loss": float("nan"), "eval/mean_reward": 0.40, "eval/extraction": 0.20, "eval/push": 0.5},
    {"step": 30, "loss": 1.5, "eval/mean_reward": 0.99},
    {"step": 30, "eval/mean_reward": 0.45, "eval/extraction": 0.30, "eval/push": 0.30},
    {"step": 40, "loss": 1.2, "eval/mean_reward": 0.452, "eval/extraction": 0.31, "eval/push": 0.40},
    {"step": 50, "loss": 1.1, "eval/mean_reward": 0.453},
    {"step": 60, "loss": 1.0, "eval/mean_reward": 0.451},
]


@pytest.fixture
def metrics_campaign(tmp_path: Path) -> Campaign:
    campaign = tree_campaign(tmp_path / "c", "", run_toml='dataset = "d.jsonl"\n[lora]\nr = 16  # doubled\n')
    write_jsonl(campaign.run("r1").metrics, METRICS)
    return campaign


@pytest.fixture(scope="module")
def bd6(tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    return copy_session(BD6_SESSION, tmp_path_factory.mktemp("bd6") / "bd6")


def fact(campaign: Campaign, decided: str, **table: Any) -> Known:
    """Evaluate one fact, declared as a tree.toml table would declare it."""
    spec = FACT_KINDS[table["kind"]].model_validate(table)
    return evaluate_fact(spec, FactContext(campaign, decided))


def test_metric_at_is_the_nearest_logged_value_at_or_before_the_step(metrics_campaign: Campaign) -> None:
    at = fact(metrics_campaign, "r1", kind="metric_at", metric="eval/mean_reward", step=30)
    assert (at.value, at.detail) == (0.45, None)  # the resume's later value replaced 0.99
    near = fact(metrics_campaign, "r1", kind="metric_at", metric="eval/mean_reward", step=600)
    assert (near.value, near.detail) == (0.451, "logged at step 60")
    before = fact(metrics_campaign, "r1", kind="metric_at", metric="eval/mean_reward", step=5)
    assert not before.known
    assert "first logged at step 10, after step 5" in str(before.detail)
    never = fact(metrics_campaign, "r1", kind="metric_at", metric="eval/sql_qa", step=30)
    assert (never.known, never.value, never.detail) == (False, None, "eval/sql_qa was never logged for r1")


def test_last_max_min_and_the_step_of_the_max(metrics_campaign: Campaign) -> None:
    last = fact(metrics_campaign, "r1", kind="metric_last", metric="loss")
    assert (last.value, last.detail) == (1.0, "logged at step 60")
    assert fact(metrics_campaign, "r1", kind="metric_max", metric="eval/mean_reward").value == 0.453
    lowest = fact(metrics_campaign, "r1", kind="metric_min", metric="loss")  # NaN is not a minimum
    assert (lowest.value, lowest.detail) == (1.0, "at step 60")
    peak = fact(metrics_campaign, "r1", kind="metric_step_of_max", metric="eval/mean_reward")
    assert peak.value == 50
    assert math.isnan(fact(metrics_campaign, "r1", kind="metric_at", metric="loss", step=25).value)


def test_plateau_is_the_watch_rules_plateau(metrics_campaign: Campaign) -> None:
    table = {"kind": "plateau", "metric": "eval/mean_reward", "window": 20, "min_delta": 0.005}
    flat = fact(metrics_campaign, "r1", **table)
    assert (flat.value, flat.detail) == (True, "from step 50, where eval/mean_reward = 0.453")
    rule = WatchRule(name="p", metric="eval/mean_reward", plateau=Plateau(window=20, min_delta=0.005))
    assert evaluate([rule], read_metrics(metrics_campaign.run("r1").metrics))[0].first_step == 50  # the same step
    early = fact(metrics_campaign, "r1", **table, before_step=40)  # 0.30 -> 0.452 moves
    assert (early.known, early.value) == (True, False)
    short = fact(metrics_campaign, "r1", **{**table, "window": 100})
    assert not short.known
    assert "too short to tell a plateau over 100 steps" in str(short.detail)


def test_eval_reward_and_the_lowest_task(metrics_campaign: Campaign) -> None:
    assert fact(metrics_campaign, "r1", kind="eval_reward", task="extraction", step=35).value == 0.30
    assert fact(metrics_campaign, "r1", kind="eval_reward", task="extraction").detail == "logged at step 40"
    metrics = ["eval/extraction", "eval/push"]
    lowest = fact(metrics_campaign, "r1", kind="lowest_of", metrics=metrics, step=10)
    assert (lowest.value, lowest.detail) == ("eval/extraction", "eval/extraction 0.17, eval/push 0.5")
    tie = fact(metrics_campaign, "r1", kind="lowest_of", metrics=metrics, step=30)
    assert not tie.known
    assert "no single lowest" in str(tie.detail)
    missing = fact(metrics_campaign, "r1", kind="lowest_of", metrics=[*metrics, "eval/sql_qa"])
    assert not missing.known
    assert "eval/sql_qa was never logged" in str(missing.detail)


def test_config_values_come_from_run_toml_with_defaults(metrics_campaign: Campaign) -> None:
    assert fact(metrics_campaign, "r1", kind="config", key="lora.r").value == 16
    assert fact(metrics_campaign, "r1", kind="config", key="lora.alpha").value == 16.0  # the default it trained with
    unset = fact(metrics_campaign, "r1", kind="config", key="train.max_steps")
    assert not unset.known
    assert "not set" in str(unset.detail)
    assert not fact(metrics_campaign, "ghost", kind="config", key="lora.r").known


def test_pass_rates_and_their_deltas(bd6: Campaign) -> None:
    rate = fact(bd6, "bd6.8d2", kind="pass_rate", bench="humaneval")
    assert (rate.value, rate.detail) == (pytest.approx(1 / 6), "1/6")
    delta = fact(bd6, "bd6.8d2", kind="pass_rate_delta", bench="mbpp")  # against production, bd6.8d
    assert delta.value == pytest.approx(12 / 13 - 1.0)
    assert delta.detail == "12/13 against 13/13 of bd6.8d"
    named = fact(bd6, "bd6.8d2", kind="pass_rate_delta", bench="humaneval", against="bd6")
    assert named.value == pytest.approx(1 / 6 - 1.0)
    assert not fact(bd6, "bd6.8d2", kind="pass_rate", bench="livecodebench").known


def test_kept_lost_counts_named_rows_and_flaky_rows(bd6: Campaign) -> None:
    lost = fact(bd6, "bd6.8d2", kind="diff_count", **{"class": "lost"}, against="bd6")
    assert lost.value == 6  # the seed's six LOST rows against BD6 pass-1
    assert fact(bd6, "bd6.8d2", kind="diff_count", **{"class": "kept"}, against="bd6").value == 13
    not_flaky = fact(bd6, "bd6.8d2", kind="diff_count", **{"class": "lost"}, against="bd6", exclude_flaky=True)
    assert not_flaky.value == 4  # HE/34 and HE/45 are decoder noise
    assert "HumanEval/34" not in str(not_flaky.detail)
    assert fact(bd6, "bd6.8d2", kind="rows_lost", rows=["MBPP/53"]).value is True  # regressed from BD6.8D
    assert fact(bd6, "bd6.8d2", kind="rows_lost", rows=["mbpp:MBPP/17", "HumanEval/85"]).value is False
    flaky = fact(bd6, "bd6.8d2", kind="flaky_rows")
    assert (flaky.value, flaky.detail) == (2, "humaneval:HumanEval/34, humaneval:HumanEval/45")


def test_gate_and_anchor_counts(bd6: Campaign) -> None:
    gate = fact(bd6, "bd6.8d2", kind="gate")
    assert gate.value is False
    assert "anchors 13/19" in str(gate.detail)
    assert fact(bd6, "bd6.8d2", kind="gate", run="bd6").value is True  # a fact may name another run
    assert fact(bd6, "bd6.8d2", kind="anchors_passed").value == 13
    runs = fact(bd6, "bd6.8d2", kind="anchors_passed", runs=["bd6.5", "bd6.8d", "bd6.8d2"])
    assert runs.value == {"bd6.5": 15, "bd6.8d": 15, "bd6.8d2": 13}
    peaks = fact(bd6, "bd6.8d2", kind="anchors_peak", levers={"replication": ["bd6.5"], "ce": ["bd6.8d", "bd6.8d2"]})
    assert (peaks.value, peaks.detail) == ({"replication": 15, "ce": 15}, "replication 15 (bd6.5), ce 15 (bd6.8d)")


def test_missing_bench_facts_are_unknown_never_a_default(bd6: Campaign, tmp_path: Path) -> None:
    campaign = copy_session(bd6.root, tmp_path / "bd6")
    (campaign.run("fresh").root).mkdir()
    campaign.run("fresh").run_toml.write_text('dataset = "d.jsonl"\n', encoding="utf-8")
    for table in ({"kind": "gate"}, {"kind": "flaky_rows"}, {"kind": "anchors_passed"}):
        got = fact(campaign, "fresh", **table)
        assert (got.known, got.value) == (False, None), table
    (campaign.root / "production.json").unlink()
    no_production = fact(campaign, "bd6.8d2", kind="pass_rate_delta", bench="mbpp")
    assert not no_production.known
    assert "no run is in production" in str(no_production.detail)
