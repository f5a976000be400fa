"""``bench judge`` end to end: the tiny model generates, tests/judge_server.py judges over HTTP.

The run is never trained: ``--checkpoint 0`` is its base model, which is all a judge needs
(its answers are gibberish; the scripted judge scores what the prompt asks for). Slow: each
judging starts a bench worker that loads the model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.bench.answers import bench_diff, bench_show
from engine.bench.judge import STATE_DIR, judge_suite
from engine.bench.store import bench_file
from engine.store.campaign import Campaign
from tests.helpers import FAST_RUN, REPO, events, stop_engine_and_workers, wait_for, write_jsonl
from tests.judge_server import JudgeServer

SECRET = "sk-e2e-93b1d5c07f"
KEY_ENV = "TUNEDECK_TEST_JUDGE_KEY"
JUDGE_TOML = """
[judge]
weights = {{ voice = 25, rhetorical = 20, historical = 20, position = 20, integrity = 15 }}
base_url = "{url}"
model = "judge-test"
api_key_env = "{key_env}"
concurrency = {concurrency}
backoff_s = 0.05
retries = 2
price_input_per_mtok = 3.0
price_output_per_mtok = 15.0
"""


def _campaign(root: Path, tiny_model: Path, url: str, *, concurrency: int = 4) -> Campaign:
    camp = Campaign.create(root, "judge tests", base=str(tiny_model))
    with open(camp.root / "campaign.toml", "a", encoding="utf-8") as handle:
        handle.write(JUDGE_TOML.format(url=url, key_env=KEY_ENV, concurrency=concurrency))
    for name in ("r1", "r2"):  # never trained: @0 is the base model, the same for both
        run_dir = camp.run(name).root
        run_dir.mkdir(parents=True)
        (run_dir / "run.toml").write_text(FAST_RUN.format(max_steps=10, logging_steps=5, save_steps=10))
    return Campaign.open(camp.root)


def _suite(path: Path, cases: list[tuple[str, str, str]]) -> Path:
    """(task_id, category, case) rows; no scorer: the judge scores them."""
    rows = [
        {"task_id": task, "category": category, "prompt": f"Answer as Madison. case: {case} score: 8\n"}
        for task, category, case in cases
    ]
    return write_jsonl(path, rows)


CASES = [
    ("gt-01", "ground_truth", "ok"),
    ("gt-02", "ground_truth", "fenced"),
    ("gt-03", "ground_truth", "nocomma"),
    ("pd-01", "position_discrimination", "truncated"),
    ("pd-02", "position_discrimination", "no_overall"),
    ("pd-03", "position_discrimination", "rate_limited"),
    ("vr-01", "verified_response", "server_error"),
    ("vr-02", "verified_response", "garbage"),
    ("vr-03", "verified_response", "critical"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[JudgeServer]:
    with JudgeServer(latency_s=0.02) as running:
        yield running


@pytest.fixture(scope="module")
def judged(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, server: JudgeServer
) -> tuple[Campaign, Any, Path]:
    camp = _campaign(tmp_path_factory.mktemp("judge") / "campaign", tiny_model, server.url)
    suite = _suite(camp.root / "suites" / "madison.jsonl", CASES)
    summary = judge_suite(camp, "r1", suite, checkpoint=0, env={KEY_ENV: SECRET})
    return camp, summary, suite


def _rows(camp: Campaign, ref: str, bench: str = "madison") -> dict[str, dict[str, Any]]:
    lines = bench_file(camp, ref, bench).read_text().splitlines()
    return {row["task_id"]: row for row in map(json.loads, lines)}


@pytest.mark.slow
def test_every_scripted_answer_lands_as_the_right_row(judged: tuple[Campaign, Any, Path]) -> None:
    camp, summary, _ = judged
    rows = _rows(camp, "r1@0")
    assert summary.rows == 9
    assert summary.errors == 1  # the garbage answer, after one re-judge
    assert summary.judged == 8
    assert summary.rejudged == 2  # truncated (then fine) and garbage
    assert summary.model == "base"
    for task in ("gt-01", "gt-02", "gt-03", "pd-01", "pd-02", "pd-03", "vr-01"):
        row = rows[task]
        assert row["scores"] == {n: 8.0 for n in ("voice", "rhetorical", "historical", "position", "integrity")}
        assert row["score"] == 8.0
        assert row["passed"] is True
        assert row["judge_model"] == "judge-test"
        assert row["rubric_sha256"] == summary.rubric_sha256
        assert row["cost_usd"] > 0
        assert row["latency_ms"] > 0  # generation time
        assert row["judge_latency_ms"] > 0
    assert rows["gt-01"]["judge_overall"] == 7.7
    assert rows["pd-02"]["judge_overall"] is None
    assert rows["pd-01"]["judge_requests"] == 2
    assert rows["vr-03"]["passed"] is False
    assert rows["vr-03"]["critical_failures"] == ["broke the persona"]
    garbage = rows["vr-02"]
    assert garbage["error"].startswith("judge error: no JSON object")
    assert garbage["scores"] is None
    assert garbage["score"] is None
    assert summary.cost_usd == pytest.approx(sum(r["cost_usd"] for r in rows.values()), abs=1e-6)


@pytest.mark.slow
def test_judge_errors_stay_out_of_the_means(judged: tuple[Campaign, Any, Path]) -> None:
    camp, _, _ = judged
    show, _ = bench_show(camp, ["r1@0"])
    bench = show.judged["r1@0"]["madison"]
    assert bench.rows == 8  # the garbage row is not a 0 in the mean
    assert bench.overall == pytest.approx(8.0)
    assert bench.categories["verified_response"].rows == 2


@pytest.mark.slow
def test_the_api_key_is_never_written(judged: tuple[Campaign, Any, Path], server: JudgeServer) -> None:
    camp, _, _ = judged
    assert f"Bearer {SECRET}" in server.authorizations
    for path in camp.root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert not (camp.run("r1").root / STATE_DIR).exists() or not any((camp.run("r1").root / STATE_DIR).iterdir())
    recorded = [e for e in events(camp.run("r1").root) if e["event"] == "bench_judge"]
    assert recorded[-1]["judged"] == 8
    assert recorded[-1]["cost_usd"] > 0


def _cli(campaign: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), KEY_ENV: SECRET}
    command = [sys.executable, "-c", "from engine.cli.main import main; main()", "bench", "judge", *args]
    return subprocess.Popen(
        [*command, "--campaign", str(campaign), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


@pytest.mark.slow
def test_an_interrupted_judging_resumes_without_paying_twice(tmp_path: Path, tiny_model: Path) -> None:
    with JudgeServer(latency_s=0.4) as server:
        camp = _campaign(tmp_path / "campaign", tiny_model, server.url, concurrency=2)
        cases = [(f"gt-{i:02d}", "ground_truth", "ok") for i in range(8)]
        suite = _suite(camp.root / "suites" / "madison.jsonl", cases)
        try:
            first = _cli(camp.root, "r1", "--suite", str(suite), "--checkpoint", "0", "--repeats", "2")
            wait_for(lambda: server.requests >= 6 or first.poll() is not None, timeout=240, what="judging")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            logs = list((camp.run("r1").root / STATE_DIR).glob("*/judged.jsonl"))
            assert len(logs) == 1
            logged = sum(1 for line in logs[0].read_text().splitlines() if line.endswith("}"))
            assert 4 <= logged < 16
            before = server.requests
            second = _cli(camp.root, "r1", "--suite", str(suite), "--checkpoint", "0", "--repeats", "2")
            out, err = second.communicate(timeout=300)
            assert second.returncode == 0, err
            summary = json.loads(out)
            assert server.requests - before == 16 - logged
            assert summary["resumed"] == logged
            assert summary["requests"] == 16 - logged
            assert summary["rows"] == 16
            rows = bench_file(camp, "r1@0", "madison").read_text().splitlines()
            assert sorted(json.loads(r)["sample"] for r in rows) == sorted([0, 1] * 8)
        finally:
            stop_engine_and_workers(camp.root)
        for path in [*camp.root.rglob("*"), *Path(camp.root / ".tunedeck").rglob("*")]:
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_repeats_give_intervals_and_a_diff_inside_the_noise_says_so(judged: tuple[Campaign, Any, Path]) -> None:
    camp, _, _ = judged
    noisy = [(f"gt-{i:02d}", "ground_truth", "noisy") for i in range(6)]
    noisy += [(f"pd-{i:02d}", "position_discrimination", "noisy") for i in range(6)]
    suite = _suite(camp.root / "suites" / "noisy.jsonl", noisy)
    # The same base model judged twice (r1@0 and r2@0): any delta between them is noise.
    for run in ("r1", "r2"):
        summary = judge_suite(camp, run, suite, checkpoint=0, repeats=3, env={KEY_ENV: SECRET})
        assert summary.rows == 36
    show, _ = bench_show(camp, ["r1@0"])
    bench = show.judged["r1@0"]["noisy"]
    assert bench.evaluations == 36
    for name in ("ground_truth", "position_discrimination"):
        stats = bench.categories[name]
        assert stats.rows == 6
        assert stats.evaluations == 18
        assert stats.ci_low is not None
        assert stats.ci_high is not None
        assert stats.mean is not None
        assert stats.ci_low < stats.mean < stats.ci_high
        assert stats.spread is not None
        assert stats.spread > 0.3
    diff, _ = bench_diff(camp, "r2@0", "r1@0")
    judged_noisy = diff.judged["noisy"]
    assert judged_noisy.inside_noise is True
    assert judged_noisy.ci_low is not None
    assert judged_noisy.ci_high is not None
    assert judged_noisy.ci_low < 0 < judged_noisy.ci_high
    # Per category a 95% interval misses 0 one time in twenty even for one model judged twice
    # (position_discrimination does here, at +0.79): each still states its interval.
    for delta in judged_noisy.categories.values():
        assert delta.ci_low is not None
        assert delta.inside_noise is not None
    assert diff.steps.same is True


@pytest.mark.slow
def test_bench_show_and_the_report_give_what_judging_cost(tmp_path: Path, tiny_model: Path) -> None:
    from tests.helpers import tunedeck_here

    with JudgeServer(latency_s=0.02) as server:
        camp = _campaign(tmp_path / "campaign", tiny_model, server.url)
        suite = _suite(camp.root / "suites" / "madison.jsonl", [("gt-01", "ground_truth", "ok"), ("gt-02", "a", "ok")])
        first = judge_suite(camp, "r1", suite, checkpoint=0, env={KEY_ENV: SECRET})
        second = judge_suite(camp, "r1", suite, checkpoint=0, repeats=2, env={KEY_ENV: SECRET})
    assert first.cost_usd is not None
    assert second.cost_usd is not None
    done = tunedeck_here("bench", "show", "r1@0", "--campaign", str(camp.root), "--json")
    assert done.returncode == 0, done.stderr
    cost = json.loads(done.stdout)["costs"]["r1"]
    assert cost["judge_usd"] == pytest.approx(first.cost_usd + second.cost_usd)  # judged twice: paid twice
    assert cost["generation_s"] == pytest.approx(first.generation_s + second.generation_s)
    assert cost["judging_s"] == pytest.approx(first.judging_s + second.judging_s)
    assert cost["total_usd"] == pytest.approx(cost["judge_usd"])
    text = tunedeck_here("bench", "show", "r1@0", "--campaign", str(camp.root)).stdout
    assert f"r1 spent: judge ${cost['judge_usd']:,.4f}, generation " in text
    report = tunedeck_here("report", "--campaign", str(camp.root), "--json")
    assert report.returncode == 0, report.stderr
    section = next(s for s in json.loads(report.stdout)["sections"] if s["id"] == "costs")
    table = next(b for b in section["blocks"] if b.get("kind") == "table")
    assert "Bench time" in table["headers"]
    r1 = next(row for row in table["rows"] if row[0] == "r1")
    assert r1[table["headers"].index("Bench time")].endswith("judge)")
