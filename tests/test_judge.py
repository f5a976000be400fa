"""The judge pipeline against a real HTTP server: parsing, retries, concurrency, resume.

These tests need no model: the answers to judge are written here, and ``judge_tasks`` sends
them to ``tests/judge_server.py`` over real HTTP. ``tests/test_judge_e2e.py`` runs the whole
``bench judge`` with the tiny model.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from engine.bench.judge import Task, judge_tasks
from engine.bench.judge_parse import VerdictError, parse_verdict, weighted_overall
from engine.bench.judge_rubric import load_rubric
from engine.bench.suite import parse_suite_row
from engine.errors import ConfigError
from engine.store.config import CampaignConfig, JudgeConfig, load_toml
from tests.judge_server import COMPONENTS, JudgeServer

WEIGHTS: dict[str, float] = {"voice": 25, "rhetorical": 20, "historical": 20, "position": 20, "integrity": 15}
NAMES = sorted(WEIGHTS)


# -- parsing --------------------------------------------------------------------------------


def _all(value: float | str) -> str:
    return ", ".join(f'"{name}": {value}' for name in NAMES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{" + _all(8) + ', "overall_score": 7.5}', 8.0),
        ("Sure! Here it is:\n```json\n{" + _all(6.5) + "}\n```\nHope this helps.", 6.5),
        ("My verdict: {" + _all(9) + "} -- end", 9.0),
        ("{\n" + "\n".join(f'"{n}": 5' for n in NAMES) + "\n}", 5.0),  # no comma between entries
        ("{" + _all(4) + ",}", 4.0),  # trailing comma
        ("{" + _all("7,5") + "}", 7.5),  # PT-BR decimal commas
        ('{"scores": {' + _all(3) + '}, "overall_score": 3}', 3.0),  # under "scores"
        ("{" + ", ".join(f'"{n.title()}": "8/10"' for n in NAMES) + "}", 8.0),  # case, text scores
    ],
)
def test_judge_answers_in_every_shape_give_the_same_scores(text: str, expected: float) -> None:
    verdict = parse_verdict(text, NAMES)
    assert verdict.scores == dict.fromkeys(NAMES, expected)


def test_the_judges_own_overall_is_kept_apart_and_never_used() -> None:
    text = '{"voice": 10, "rhetorical": 8, "historical": 8, "position": 8, "integrity": 6, "overall_score": 5}'
    verdict = parse_verdict(text, NAMES)
    assert verdict.judge_overall == 5.0
    assert weighted_overall(verdict.scores, WEIGHTS) == pytest.approx((250 + 160 * 3 + 90) / 100)
    assert parse_verdict("{" + _all(7) + "}", NAMES).judge_overall is None  # missing overall: None, not 0


def test_critical_failures_come_as_a_list_of_reasons() -> None:
    text = "{" + _all(2) + ', "critical_failures": ["said it is an AI", ""]}'
    assert parse_verdict(text, NAMES).critical_failures == ["said it is an AI"]
    assert parse_verdict("{" + _all(2) + ', "critical_failures": true}', NAMES).critical_failures == [
        "critical failure"
    ]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("I refuse to grade this.", "no JSON object"),
        ('{"voice": 8, "rhetorical": 7}', "historical, integrity, position"),
        ('{"voice": "great", ' + ", ".join(f'"{n}": 5' for n in NAMES if n != "voice") + "}", "no number for voice"),
    ],
)
def test_an_answer_without_the_rubrics_fields_is_a_parse_failure(text: str, why: str) -> None:
    with pytest.raises(VerdictError, match=why):
        parse_verdict(text, NAMES)


def test_a_cut_answer_is_not_repaired_into_a_score() -> None:
    cut = '{"voice": 8, "rhetorical": 7, "historical": 6, "position": 9, "integrity": 8'
    assert parse_verdict(cut, NAMES).scores["integrity"] == 8  # repair closes the brace
    with pytest.raises(VerdictError):
        parse_verdict(cut, NAMES, repair=False)  # what judge_one does for finish_reason "length"


# -- config -----------------------------------------------------------------------------------


def test_a_weights_only_judge_section_still_validates(tmp_path: Path) -> None:
    path = tmp_path / "campaign.toml"
    path.write_text('name = "x"\n[judge]\nweights = { voice = 25, integrity = 15 }\n')
    config = load_toml(path, CampaignConfig)
    assert config.judge is not None
    assert config.judge.base_url is None
    assert config.judge.temperature == 0.0


def test_a_bad_judge_setting_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "campaign.toml"
    path.write_text('name = "x"\n[judge]\nweights = { voice = 1 }\nbase_url = "localhost:8080"\n')
    with pytest.raises(ConfigError) as caught:
        load_toml(path, CampaignConfig)
    assert caught.value.line == 4
    assert caught.value.field == "judge.base_url"


# -- judging over HTTP ------------------------------------------------------------------------


def _config(url: str, **settings: Any) -> JudgeConfig:
    values: dict[str, Any] = {"weights": WEIGHTS, "base_url": url, "model": "judge-test", "backoff_s": 0.05}
    return JudgeConfig.model_validate(values | settings)


def _task(case: str, *, score: float = 7.0, task_id: str | None = None, repeat: int = 0) -> Task:
    record = {"task_id": task_id or case, "prompt": f"case: {case} score: {score}", "expected": ""}
    row = parse_suite_row(record, default_bench="madison", path=Path("suite.jsonl"), line=1)
    return Task(row, 0, repeat, "Fellow citizens, the answer.", 10.0)


def _judge(config: JudgeConfig, tasks: list[Task], log: Path, key: str | None = None) -> dict[str, dict[str, Any]]:
    rubric = load_rubric(log.parent, config)
    results, _ = asyncio.run(judge_tasks(config, key, rubric, tasks, log))
    return {task.row.task_id: results[task.key] for task in tasks}


CASES = [
    "ok", "fenced", "nocomma", "ptbr", "no_overall", "critical", "truncated", "truncated_always", "garbage",
    "rate_limited", "server_error", "always_500", "slow",
]  # fmt: skip


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> tuple[JudgeServer, dict[str, dict[str, Any]], float]:
    """Every scripted case judged once, 4 at a time, through one server."""
    log = tmp_path_factory.mktemp("judge") / "judged.jsonl"
    with JudgeServer(slow_s=0.5) as server:
        began = time.monotonic()
        results = _judge(_config(server.url, concurrency=4, retries=2), [_task(c, score=8.5) for c in CASES], log)
        return server, results, time.monotonic() - began


def test_well_formed_and_repairable_answers_are_scored(scripted: Any) -> None:
    server, results, _ = scripted
    for case in ("ok", "fenced", "nocomma", "ptbr", "no_overall", "slow"):
        result = results[case]
        assert result["error"] is None, case
        assert result["scores"] == dict.fromkeys(COMPONENTS, 8.5), case
        assert result["score"] == 8.5, case
        assert result["judge_requests"] == 1, case
    assert results["ok"]["judge_overall"] == 8.2  # the judge's own (biased) figure, kept apart
    assert results["no_overall"]["judge_overall"] is None
    assert results["critical"]["critical_failures"] == ["broke the persona"]
    assert results["ok"]["tokens_in"] > 100
    assert results["ok"]["tokens_out"] > 0


def test_a_cut_answer_is_judged_again_with_a_larger_budget(scripted: Any) -> None:
    server, results, _ = scripted
    assert results["truncated"]["error"] is None
    assert results["truncated"]["rejudged"] is True
    assert results["truncated"]["judge_requests"] == 2
    assert sorted(set(server.max_tokens_seen)) == [2048, 4096]
    for case in ("truncated_always", "garbage"):
        error = results[case]["error"]
        assert error is not None, case
        assert "judged again with max_tokens=4096" in error
        assert "score" not in results[case]  # never a 0
        assert server.per_case[case] == 2


def test_429_and_500_are_retried_honouring_retry_after(scripted: Any) -> None:
    server, results, _ = scripted
    assert results["rate_limited"]["error"] is None
    assert server.per_case["rate_limited"] == 2
    first, second = server.times["rate_limited"]
    assert second - first >= 1.0  # Retry-After: 1, not the 0.05 s backoff
    assert results["server_error"]["error"] is None
    assert server.per_case["server_error"] == 2
    assert "HTTP 500" in results["always_500"]["error"]
    assert "after 3 tries" in results["always_500"]["error"]
    assert server.per_case["always_500"] == 3
    assert results["always_500"]["paid"] is False  # nothing came back: a resume asks again


def test_the_concurrency_limit_holds(tmp_path: Path) -> None:
    with JudgeServer(latency_s=0.05) as server:
        tasks = [_task("ok", task_id=f"t{i}") for i in range(24)]
        results = _judge(_config(server.url, concurrency=3), tasks, tmp_path / "judged.jsonl")
    assert server.max_in_flight == 3
    assert server.requests == 24
    assert all(r["error"] is None for r in results.values())


def test_the_key_goes_in_the_header_and_nowhere_on_disk(tmp_path: Path) -> None:
    secret = "sk-test-4f1c9a7e0b"
    with JudgeServer() as server:
        results = _judge(_config(server.url), [_task("ok"), _task("always_500")], tmp_path / "judged.jsonl", secret)
    assert set(server.authorizations) == {f"Bearer {secret}"}
    assert secret not in json.dumps(results)
    assert secret not in (tmp_path / "judged.jsonl").read_text()


def test_a_resumed_judging_pays_only_for_what_it_has_not_judged(tmp_path: Path) -> None:
    log = tmp_path / "judged.jsonl"
    tasks = [_task("ok", task_id=f"t{i}") for i in range(10)]
    with JudgeServer() as server:
        _judge(_config(server.url), tasks, log)
        assert server.requests == 10
        lines = log.read_text().splitlines()
        # As a kill leaves it: six whole judgements and a torn seventh line.
        log.write_text("\n".join(lines[:6]) + "\n" + lines[6][:40])
        again = _judge(_config(server.url), tasks, log)
        assert server.requests == 10 + 4
        assert sum(bool(r.get("resumed")) for r in again.values()) == 6
        # A changed rubric is a new judgement: nothing is reused.
        (tmp_path / "rubric.md").write_text("Score harshly.")
        _judge(_config(server.url, rubric="rubric.md"), tasks, log)
        assert server.requests == 10 + 4 + 10
