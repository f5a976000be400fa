"""``run_suite`` end to end: a real training worker, a real bench worker, real sandboxed tests.

One run is trained once for the module (300 steps of the reverse task: the slow part, ~10 s
on an idle 2-core CPU); the base model is the same run at ``@0``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.api import BenchRunSummary
from engine.bench.model_choice import choose_model
from engine.bench.rows import ROW_FIELDS, check_row
from engine.bench.run import BenchWorkerFailed, run_suite
from engine.bench.store import bench_file
from engine.demo.reverse_task import reverse_rows
from engine.demo.suite import build_demo_suite
from engine.errors import ConfigError, ImportFormatError, NotFoundError
from engine.runs.launch import train_command
from engine.store.campaign import Campaign
from engine.store.merged import file_hashes
from tests.helpers import FAST_RUN, events, write_jsonl

TRAIN_ROWS = 2000
STEPS = 300


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Campaign:
    camp = Campaign.create(tmp_path_factory.mktemp("bench") / "campaign", "bench tests", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "train.jsonl", reverse_rows(TRAIN_ROWS, seed=1))
    return camp


@pytest.fixture(scope="module")
def trained(campaign: Campaign) -> Path:
    run_dir = campaign.run("r1").root
    run_dir.mkdir(parents=True)
    (run_dir / "run.toml").write_text(FAST_RUN.format(max_steps=STEPS, logging_steps=50, save_steps=STEPS // 2))
    done = subprocess.run(train_command(run_dir), capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return run_dir


@pytest.fixture(scope="module")
def suite(campaign: Campaign) -> Path:
    """The demo suite, held out from this campaign's data, plus a probe row that reports its process."""
    train_prompts = {row["prompt"] for row in reverse_rows(TRAIN_ROWS, seed=1)}
    rows: list[dict[str, Any]] = build_demo_suite(exclude_prompts=train_prompts)
    assert not {row["prompt"] for row in rows} & train_prompts
    # The sandbox lets nothing out but the program's own error line: the probe reports through it.
    probe = "import json, os\nassert False, json.dumps({'pid': os.getpid(), 'cwd': os.getcwd()})"
    rows.append({"bench": "probe", "task_id": "where", "prompt": "reverse: a b c\n", "tests": probe})
    return write_jsonl(campaign.root / "suites" / "demo.jsonl", rows)


@pytest.fixture(scope="module")
def results(campaign: Campaign, trained: Path, suite: Path) -> tuple[BenchRunSummary, BenchRunSummary]:
    said: list[str] = []
    after = run_suite(campaign, "r1", suite, say=said.append)
    before = run_suite(campaign, "r1", suite, checkpoint=0, samples=2)
    assert any("reverse:" in line for line in said)
    return after, before


def _passed(summary: BenchRunSummary) -> int:
    return sum(counts.passed for bench, counts in summary.benches.items() if bench != "probe")


@pytest.mark.slow
def test_the_trained_run_beats_its_base_model(results: tuple[BenchRunSummary, BenchRunSummary]) -> None:
    after, before = results
    print(f"\npassed: base {_passed(before)} -> trained {_passed(after)} of 40")
    assert _passed(after) > _passed(before)
    assert _passed(after) >= 4
    assert after.model == "adapter"
    assert before.model == "base"
    summary = after.model_dump(mode="json")
    assert summary["run"] == "r1"
    assert summary["rows"] == 41
    assert summary["benches"]["reverse"]["total"] == 24
    assert summary["benches"]["reverse-tests"]["total"] == 16
    assert summary["benches"]["probe"] == {"total": 1, "passed": 0}
    assert isinstance(summary["seconds"], float)
    assert json.loads(json.dumps(summary)) == summary
    assert before.run == "r1@0"
    assert before.rows == 82  # two samples of every row


@pytest.mark.slow
def test_rows_are_written_in_the_canonical_format(
    campaign: Campaign, results: tuple[BenchRunSummary, BenchRunSummary], trained: Path
) -> None:
    path = bench_file(campaign, "r1", "reverse")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 24
    for number, row in enumerate(lines, start=1):
        assert tuple(row)[: len(ROW_FIELDS)] == ROW_FIELDS
        assert check_row(row, run="r1", bench=None, path=str(path), line=number) == row
        assert row["run"] == "r1"
        assert row["sample"] == 0
        assert row["latency_ms"] > 0
        assert isinstance(row["completion"], str)
        assert row["prompt"].startswith("reverse: ")
        assert (row["error"] is None) == row["passed"]
    base_rows = [json.loads(line) for line in bench_file(campaign, "r1@0", "reverse-tests").read_text().splitlines()]
    assert sorted({row["sample"] for row in base_rows}) == [0, 1]
    assert {row["run"] for row in base_rows} == {"r1@0"}
    recorded = [e for e in events(trained) if e["event"] == "bench"]
    assert [e["ref"] for e in recorded] == ["r1", "r1@0"]
    assert recorded[0]["benches"]["reverse"]["total"] == 24
    assert not list(trained.glob(".bench-*")), "scratch folder left behind"


@pytest.mark.slow
def test_tests_rows_run_in_a_separate_sandboxed_process(campaign: Campaign, results: Any) -> None:
    probe = json.loads(bench_file(campaign, "r1", "probe").read_text().splitlines()[0])
    assert probe["passed"] is False
    assert probe["error"].startswith("AssertionError: {")
    ran = json.loads(probe["error"].removeprefix("AssertionError: "))
    assert ran["pid"] != os.getpid()
    assert "tunedeck-sandbox-" in ran["cwd"]
    assert not Path(ran["cwd"]).exists()


def test_a_run_without_a_model_is_a_clear_error_before_any_process(campaign: Campaign, suite: Path) -> None:
    run_dir = campaign.run("untrained").root
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.toml").write_text(FAST_RUN.format(max_steps=10, logging_steps=5, save_steps=5))
    with pytest.raises(NotFoundError, match="run 'untrained' has no merged model or final adapter yet"):
        run_suite(campaign, "untrained", suite)
    with pytest.raises(NotFoundError, match=r"no complete checkpoint at step 45 \(complete: none; 0 is the base"):
        run_suite(campaign, "untrained@45", suite)
    with pytest.raises(NotFoundError, match="no run named 'ghost'"):
        run_suite(campaign, "ghost", suite)
    assert not (run_dir / "bench.log").exists()
    assert not (campaign.root / "bench" / "untrained").exists()


@pytest.mark.slow
def test_bad_arguments_are_refused_before_any_process(campaign: Campaign, trained: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "a", "prompt": "p", "expected": "x"}\n{"task_id": "b", "prompt": "p"}\n')
    log = trained / "bench.log"
    size = log.stat().st_size if log.exists() else 0
    with pytest.raises(ImportFormatError, match=r"bad\.jsonl:2: .*exactly one scorer"):
        run_suite(campaign, "r1", bad)
    with pytest.raises(NotFoundError, match=r"no complete checkpoint at step 45 \(complete: 150, 300"):
        run_suite(campaign, "r1", _ok_suite(tmp_path), checkpoint=45)
    with pytest.raises(ConfigError, match="names step 150 but --checkpoint says 300"):
        run_suite(campaign, "r1@150", _ok_suite(tmp_path), checkpoint=300)
    with pytest.raises(ConfigError, match="samples: must be between 1 and 100"):
        run_suite(campaign, "r1", _ok_suite(tmp_path), samples=0)
    assert (log.stat().st_size if log.exists() else 0) == size


def _ok_suite(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "ok.jsonl", [{"task_id": "a", "prompt": "reverse: a b\n", "expected": "b a"}])


@pytest.mark.slow
def test_a_merged_model_is_preferred_and_checkpoints_resolve(campaign: Campaign, trained: Path) -> None:
    assert choose_model(campaign, "r1").label == "adapter"
    assert choose_model(campaign, "r1", 150).adapter == trained / "checkpoints" / "checkpoint-150"
    assert choose_model(campaign, "r1", 0).adapter is None
    fake = campaign.run("merged-only").root
    (fake / "merged").mkdir(parents=True)
    (fake / "run.toml").write_text(FAST_RUN.format(max_steps=10, logging_steps=5, save_steps=5))
    (fake / "merged" / "config.json").write_text("{}")
    with pytest.raises(NotFoundError, match=r"does not verify \(no manifest.json\)"):
        choose_model(campaign, "merged-only")  # a folder that merely looks merged is not used
    (fake / "merged" / "model.safetensors").write_bytes(b"weights")
    files = file_hashes(fake / "merged")
    (fake / "merged" / "manifest.json").write_text(json.dumps({"files": files}))
    choice = choose_model(campaign, "merged-only")
    assert (choice.label, choice.model_dir, choice.adapter) == ("merged", fake / "merged", None)


@pytest.mark.slow
def test_a_worker_failure_is_one_line_with_the_log(campaign: Campaign, tmp_path: Path) -> None:
    run_dir = campaign.run("broken").root
    (run_dir / "adapter").mkdir(parents=True)
    (run_dir / "run.toml").write_text(FAST_RUN.format(max_steps=10, logging_steps=5, save_steps=5))
    (run_dir / "adapter" / "adapter_config.json").write_text("{not json")
    with pytest.raises(BenchWorkerFailed) as caught:
        run_suite(campaign, "broken", _ok_suite(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"{run_dir / 'bench.log'}: the bench worker exited with status 1: ")
    assert "\n" not in message
    assert "Traceback" not in message
    assert not (campaign.root / "bench" / "broken").exists()
