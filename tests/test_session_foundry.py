"""sessions/foundry: the Foundry write-up (seed 003) as a ledger of runs and judged bench rows.

The expected figures are typed from the write-up's tables, not read from the session's files,
so a change to the rows (or to how tunedeck averages them) that moves a figure fails here.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from engine.errors import ConfigError
from engine.store.campaign import Campaign
from engine.store.config import RunConfig, validate_toml
from tests.helpers import tunedeck

SESSION = Path(__file__).resolve().parent.parent / "sessions" / "foundry"
CATEGORIES = (
    "anachronism_trap",
    "character_consistency",
    "ground_truth",
    "position_discrimination",
    "private_voice",
    "verified_response",
)
# "Category Scores (Raw)": ref -> (Overall, AT, CC, GT, PD, PV, VR, Crit. Failures).
RAW_TABLE = {
    "orpo-v3b": (3.41, 1.40, 2.83, 3.56, 1.75, 2.84, 6.40, 24),
    "orpo-v4-gguf": (1.74, 1.04, 2.85, 1.46, 1.67, 1.60, 2.06, 27),
    "orpo-v4-bf16": (7.69, 9.12, 7.65, 6.72, 9.47, 5.52, 7.82, 6),
    "orpo-v4-lora": (8.17, 9.52, 6.95, 8.78, 9.63, 7.00, 6.97, 11),
    "qwen3-v1": (8.80, 9.40, 9.20, 8.77, 9.42, 8.74, 7.82, 7),
    "qwen3-v2": (8.65, 9.40, 8.95, 9.05, 9.45, 6.72, 8.22, 11),
    "qwen3-v3": (7.84, 9.48, 6.28, 7.88, 9.40, 7.16, 6.83, 12),
    "qwen3-v4@150": (6.83, 8.94, 5.40, 6.99, 7.28, 6.00, 6.24, 18),
    "qwen3-v4": (8.30, 9.36, 8.95, 6.90, 9.50, 8.30, 7.83, 10),
    "sft-v1": (2.03, 1.52, 1.70, 2.77, 0.43, 2.72, 2.54, 29),
    "sft-v2": (2.19, 1.30, 1.12, 2.26, 1.47, 2.72, 3.43, 30),
    "qwen3-r2": (8.51, 9.44, 9.45, 6.78, 9.27, 8.72, 8.47, 9),
}
# "Corrected Category Scores (Qwen 3 runs only)": ref -> (Overall, AT, CC, GT, PD, PV, VR).
CORRECTED_TABLE = {
    "qwen3-v1": (8.81, 9.36, 9.19, 8.75, 9.38, 8.75, 7.96),
    "qwen3-v2": (8.82, 9.35, 9.06, 9.02, 9.42, 7.84, 8.32),
    "qwen3-r2": (8.97, 9.39, 9.41, 8.85, 9.25, 8.75, 8.53),
}
# "Score Progression" and "Per-Run Variations": run -> (method, date, dataset, pairs, rank, lr, steps).
LEDGER = {
    "dpo-v1": ("dpo", "2026-03-24", "v1", 200, None, None, None),
    "orpo-v3b": ("orpo", "2026-03-26", "v3b", 475, 16, 2e-5, 356),
    "orpo-v4-gguf": ("orpo", "2026-03-27", "v4", 1273, 16, 2e-5, 955),
    "orpo-v4-bf16": ("orpo", "2026-03-28", "v4", 1273, 16, 2e-5, 955),
    "orpo-v4-lora": ("orpo", "2026-03-29", "v4", 1273, 16, 2e-5, 955),
    "qwen3-v1": ("orpo", "2026-03-29", "v4", 1273, 64, 2e-5, 861),
    "qwen3-v2": ("orpo", "2026-03-30", "v4", 1273, 64, 2e-5, 861),
    "qwen3-v3": ("orpo", "2026-03-30", "v4", 1273, 64, 8e-6, 861),
    "qwen3-v4": ("orpo", "2026-03-30", "v4", 1273, 64, 1.2e-5, 861),
    "sft-v1": ("sft", "2026-03-30", "SFT", 510, 16, 2e-5, 383),
    "sft-v2": ("sft", "2026-03-30", "SFT", 510, 8, 1e-6, 383),
    "qwen3-r2": ("orpo", "2026-03-31", "v6", 1498, 64, 2e-5, 1011),
}
PROBES = {
    "probe-baseline",
    "probe-source-first",
    "probe-lr2.2e-5",
    "probe-beta0.12",
    "probe-gt-focus",
    "probe-lr1.8e-5",
}


@pytest.fixture
def foundry(tmp_path: Path) -> Path:
    """A copy of the session without its DuckDB cache (rebuilt from the files by the first query)."""
    root = tmp_path / "foundry"
    shutil.copytree(SESSION, root, ignore=shutil.ignore_patterns(".tunedeck", "__pycache__"))
    return root


def row_key(row: dict[str, Any]) -> tuple[str, str]:
    return (row["bench"], row["task_id"])


def cli_json(*args: str) -> Any:
    done = tunedeck(*args, "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def test_bench_show_reproduces_the_raw_and_corrected_category_tables(foundry: Path) -> None:
    shown = cli_json("bench", "show", "--campaign", str(foundry))
    judged = shown["judged"]
    for ref, (overall, *means, _) in RAW_TABLE.items():
        bench = judged[ref]["madison"]
        got = [round(bench["categories"][c]["overall"], 2) for c in CATEGORIES]
        assert (round(bench["overall"], 2), got) == (overall, means), ref
        assert bench["rows"] == 36
        assert bench["incomplete"] == 0
    for ref, (overall, *means) in CORRECTED_TABLE.items():
        bench = judged[ref]["madison-corrected"]
        got = [round(bench["categories"][c]["overall"], 2) for c in CATEGORIES]
        assert (round(bench["overall"], 2), got) == (overall, means), ref
    assert {ref for ref, benches in judged.items() if "madison-corrected" in benches} == set(CORRECTED_TABLE)
    # The critical failures are the rows that did not pass.
    failures = {r["run"]: r["total"] - r["passed"] for r in shown["pass_rates"] if r["bench"] == "madison"}
    assert failures == {ref: row[-1] for ref, row in RAW_TABLE.items()}


def test_rows_are_what_the_generator_writes(foundry: Path) -> None:
    spec = importlib.util.spec_from_file_location("build_bench", SESSION / "tools" / "build_bench.py")
    assert spec is not None
    assert spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((foundry / "bench").glob("*/*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        written.setdefault(path.parent.name, []).extend(json.loads(line) for line in lines)
    expected = module.all_rows()
    assert sorted(written) == sorted(expected)
    for ref, rows in expected.items():
        assert sorted(written[ref], key=row_key) == sorted(rows, key=row_key), ref
    # v3b's per-prompt scores the write-up quotes (top and worst performers) are kept as quoted.
    v3b = {row["task_id"]: row["scores"]["voice"] for row in written["orpo-v3b"]}
    assert [v3b[t] for t in ("vr-08", "pv-05", "gt-01", "gt-07", "pd-03", "at-02")] == [9.6, 9.2, 9.1, 1.0, 1.0, 1.0]


def test_status_lists_every_run_and_sums_the_declared_costs(foundry: Path) -> None:
    status = cli_json("status", "--campaign", str(foundry))
    states = {run["run"]: run["state"] for run in status["runs"]}
    # The ledger's runs are finished; the tiny runs (runs/tiny-*, tests/test_tiny_sessions.py) wait to be trained.
    assert states == dict.fromkeys({*LEDGER, *PROBES, "gemma-sft-introspection"}, "finished") | dict.fromkeys(
        {"tiny-orpo", "tiny-dpo"}, "created"
    )
    total = status["cost_total"]
    # The Cost Summary's lines, each declared once: training, eval and data dollars.
    assert round(total["training_usd"], 2) == 133.0  # 5 + 10 + 15 + 15 + 30 + 10 + 8 + 5 + 35
    assert round(total["eval_usd"], 2) == 9.5
    assert round(total["data_usd"], 2) == 10.2  # ~$6.15 (v4) + ~$4.05 (R2)
    assert round(total["total_usd"], 2) == 152.7  # the write-up's "~$155" adds its rounded line totals
    assert total["gpu_hours"] == pytest.approx(1.29)
    assert set(status["costs"]) == {
        "orpo-v3b", "orpo-v4-bf16", "orpo-v4-gguf", "qwen3-v1", "qwen3-v2", "qwen3-v3", "sft-v1", "qwen3-r2",
        "probe-baseline",
    }  # fmt: skip


def test_ledger_fields_are_read_from_every_run_toml(foundry: Path) -> None:
    campaign = Campaign.open(foundry)
    for run, (method, date, dataset, pairs, rank, lr, steps) in LEDGER.items():
        config = campaign.load_run(run)
        assert config.ledger is not None, run
        assert config.method.name == method, run
        assert (config.ledger.date, config.ledger.dataset, config.ledger.pairs) == (
            datetime.date.fromisoformat(date),
            dataset,
            pairs,
        ), run
        if rank is not None:
            assert (config.lora.r, config.lora.alpha, config.train.learning_rate) == (rank, rank, lr), run
            assert config.train.max_steps == steps, run
    r2 = campaign.load_run("qwen3-r2")
    assert r2.ledger is not None
    assert r2.ledger.reported["corrected"] == 8.97
    # ORPO's beta: 0.1 in the common configuration, 0.12 in the probe that broke private_voice.
    betas = {run: campaign.load_run(run).method for run in ("qwen3-r2", "probe-beta0.12")}
    assert {run: (m.name, getattr(m, "beta", None)) for run, m in betas.items()} == {
        "qwen3-r2": ("orpo", 0.1),
        "probe-beta0.12": ("orpo", 0.12),
    }
    production = json.loads((foundry / "production.json").read_text(encoding="utf-8"))
    assert (production["run"], production["artifact"]) == ("qwen3-r2", "runs/qwen3-r2/adapter")


def test_bench_diff_and_watch_work_on_the_session(foundry: Path) -> None:
    diff = cli_json("bench", "diff", "qwen3-r2", "--against", "qwen3-v1", "--campaign", str(foundry))
    assert set(diff["benches"]) == {"madison", "madison-corrected"}
    madison = diff["benches"]["madison"]
    assert (madison["baseline_passed"], madison["candidate_passed"]) == (36 - 7, 36 - 9)
    assert len(diff["kept"]) + len(diff["lost"]) + len(diff["gained"]) + len(diff["still_failing"]) == 72
    against_production = cli_json("bench", "diff", "qwen3-v1", "--campaign", str(foundry))
    assert against_production["baseline"] == "qwen3-r2"
    assert against_production["baseline_is_production"]
    checkpoint = cli_json("bench", "diff", "qwen3-v4@150", "--against", "qwen3-v4", "--campaign", str(foundry))
    assert checkpoint["benches"]["madison"]["candidate_passed"] == 36 - 18
    assert cli_json("watch", "qwen3-r2", "--campaign", str(foundry)) == {"alerts": []}


@pytest.mark.parametrize(
    ("ledger", "field", "message"),
    [
        ('date = "2026-03-31"', "ledger.date", "a TOML date without quotes"),
        ("date = 2026-03-31T10:00:00", "ledger.date", "a TOML date without quotes"),
        ("pairs = -1", "ledger.pairs", "greater than or equal to 0"),
        ('reported = { raw = "8.5" }', "ledger.reported.raw", "valid number"),
        ("cost = 3", "ledger.cost", "unknown field"),
    ],
)
def test_a_bad_ledger_is_one_line_naming_the_field(ledger: str, field: str, message: str) -> None:
    text = f'dataset = "d.jsonl"\n\n[ledger]\n{ledger}\n'
    with pytest.raises(ConfigError) as caught:
        validate_toml(Path("run.toml"), text, RunConfig)
    assert caught.value.field == field
    assert caught.value.line == 4
    assert message in str(caught.value)
