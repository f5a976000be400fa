"""Pass rates, the row-by-row diff, flaky rows, judged scores and eval rewards, on real DuckDB."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.bench import compare
from engine.bench.db import BenchDB, opened
from engine.bench.rows import bench_row
from engine.bench.stats import mcnemar_exact
from engine.bench.store import write_bench
from engine.errors import NotFoundError
from engine.store.campaign import Campaign
from tests.bench_fixtures import BENCH_CAMPAIGN, copy_campaign
from tests.helpers import REPO, tunedeck_here


@pytest.fixture
def camp(tmp_path: Path) -> Campaign:
    return copy_campaign(BENCH_CAMPAIGN, tmp_path / "c")


def test_pass_rates_count_distinct_tasks_and_first_samples(camp: Campaign) -> None:
    with opened(camp) as db:
        rates = {(r["run"], r["bench"]): r for r in compare.pass_rates(db)}
    assert (rates["base", "code"]["total"], rates["base", "code"]["passed"]) == (13, 9)
    cand = rates["cand", "code"]
    # T/3 passed its first sample and failed its second: it counts as passed, and as flaky.
    assert (cand["total"], cand["passed"], cand["flaky"], cand["rows"]) == (13, 7, 1, 14)
    assert cand["pass_rate"] == pytest.approx(7 / 13)
    assert cand["latency_ms"] == pytest.approx(1400.0)


def test_diff_classifies_every_row(camp: Campaign) -> None:
    with opened(camp) as db:
        result = compare.diff(db, "cand", "base").model_dump(mode="json")
    assert result["kept"] == [*(f"code:T/{i}" for i in range(1, 6)), "madison:q1", "madison:q2"]
    assert result["lost"] == ["code:T/6", "code:T/7", "code:T/8"]
    assert result["gained"] == ["code:T/9", "code:T/10"]
    assert result["still_failing"] == ["code:T/11", "code:T/12"]
    assert result["only_candidate"] == ["code:T/105"]
    assert result["only_baseline"] == ["code:T/99", "madison:q3"]
    assert result["flaky"] == ["code:T/3"]
    assert result["p_value"] == pytest.approx(1.0)  # 3 lost vs 2 gained: nothing to see
    code = result["benches"]["code"]
    assert (code["baseline_total"], code["baseline_passed"]) == (13, 9)
    assert (code["candidate_total"], code["candidate_passed"]) == (13, 7)
    assert (code["kept"], code["lost"], code["gained"], code["still_failing"]) == (5, 3, 2, 2)
    assert (code["only_candidate"], code["only_baseline"], code["flaky"]) == (1, 1, 1)
    assert code["delta"] == pytest.approx(7 / 13 - 9 / 13)


def test_diff_of_unknown_run_is_a_clear_error(camp: Campaign) -> None:
    with opened(camp) as db, pytest.raises(NotFoundError, match="no bench results for 'nope'"):
        compare.diff(db, "nope", "base")


@pytest.mark.parametrize(
    ("lost", "gained", "expected"),
    [(0, 0, 1.0), (2, 0, 0.5), (5, 0, 0.0625), (0, 5, 0.0625), (3, 1, 0.625), (10, 1, 0.01171875), (6, 6, 1.0)],
)
def test_mcnemar_exact_matches_the_binomial(lost: int, gained: int, expected: float) -> None:
    assert mcnemar_exact(lost, gained) == pytest.approx(expected, rel=1e-9)


def test_mcnemar_on_a_million_discordant_rows_is_sane() -> None:
    # Its speed (well under 0.5 s) is measured by tests/perf/bench_timings.py.
    p = mcnemar_exact(500_000, 499_000)
    # Normal approximation: z = 1000 / sqrt(999000) = 1.0005 -> p ~ 0.317.
    assert p == pytest.approx(math.erfc(1000 / math.sqrt(999_000) / math.sqrt(2)), rel=0.01)
    assert mcnemar_exact(400_000, 600_000) < 1e-300 or mcnemar_exact(400_000, 600_000) == 0.0


def test_cache_follows_the_files(camp: Campaign) -> None:
    with opened(camp) as db:
        assert db.cached
        assert db.sync() == 0  # nothing changed since open
    with opened(camp) as db:
        assert db.sync() == 0  # the second process-lifetime open reuses the table
        # Replacing a bench file (as a re-import does) replaces its rows, never adds to them.
        write_bench(camp, "cand", "code", [bench_row("cand", "code", "T/1", False)])
        time.sleep(0.01)
        assert db.sync() == 1
        rates = {(r["run"], r["bench"]): r for r in compare.pass_rates(db, ["cand"])}
        assert (rates["cand", "code"]["total"], rates["cand", "code"]["passed"]) == (1, 0)
        (camp.root / "bench" / "cand" / "code.jsonl").unlink()
        db.sync()
        assert ("cand", "code") not in {(r["run"], r["bench"]) for r in compare.pass_rates(db)}


def test_cache_written_by_an_older_schema_is_rebuilt(camp: Campaign) -> None:
    with opened(camp) as db:
        db.con.execute("UPDATE bench_meta SET value = '0' WHERE key = 'schema'")
        db.con.execute("DELETE FROM bench_rows")
    with opened(camp) as db:
        assert len(compare.pass_rates(db)) == 4


def test_a_locked_cache_falls_back_to_reading_the_files(camp: Campaign) -> None:
    """Another process holding the cache (an engine, a second terminal) must not break a diff."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)",
         str(camp.root / ".tunedeck" / "bench.duckdb")],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        (camp.root / ".tunedeck").mkdir(exist_ok=True)
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        db = BenchDB.open(camp)
        try:
            assert not db.cached
            assert compare.diff(db, "cand", "base").lost == ["code:T/6", "code:T/7", "code:T/8"]
        finally:
            db.close()
    finally:
        holder.kill()
        holder.wait()


def test_a_hand_edited_bad_line_is_reported_and_the_rest_kept(camp: Campaign) -> None:
    path = camp.root / "bench" / "cand" / "code.jsonl"
    lines = path.read_text().splitlines()
    lines.insert(2, '{"task_id": "T/x", "passed": "yes", "bench": "code"}')
    lines.insert(4, "{not json")
    path.write_text("\n".join(lines) + "\n")
    with opened(camp) as db:
        rates = {(r["run"], r["bench"]): r for r in compare.pass_rates(db, ["cand"])}
        warnings = list(db.warnings)
    assert rates["cand", "code"]["total"] == 13
    assert any(f"{path}:3: passed:" in w for w in warnings)
    assert any(f"{path}:5: not valid JSON" in w for w in warnings)


def test_judged_rows_use_declared_weights_never_the_judges_overall(camp: Campaign) -> None:
    assert camp.config.judge is not None
    weights = camp.config.judge.weights
    with opened(camp) as db:
        rows = {(r["run"], r["task_id"]): r for r in compare.judged_rows(db, weights)}
        summary = compare.judged_summary(db, weights)
    assert rows["base", "q1"]["overall"] == pytest.approx(8.5)  # the judge said 1.0
    assert rows["cand", "q2"]["overall"] == pytest.approx(7.85)
    assert rows["base", "q3"]["overall"] is None  # three declared categories missing
    base = summary["base"]["madison"]
    assert (base["rows"], base["incomplete"]) == (3, 1)
    assert base["overall"] == pytest.approx((8.5 + 6.0) / 2)
    assert base["categories"]["private_voice"]["overall"] == pytest.approx(6.0)
    assert base["categories"]["anachronism_trap"]["overall"] == pytest.approx(8.5)
    assert base["scores"]["voice"] == pytest.approx((8 + 6 + 9) / 3)
    assert base["scores"]["historical"] == pytest.approx((7 + 6) / 2)
    assert summary["cand"]["madison"]["overall"] == pytest.approx((9.0 + 7.85) / 2)


def test_eval_rewards_per_task_with_deltas_against_a_frozen_baseline(camp: Campaign) -> None:
    with opened(camp) as db:
        rewards = {(r["run"], r["metric"]): r for r in compare.eval_rewards(db, ["cand"], baseline="base")}
    extraction = rewards["cand", "eval/extraction"]
    # Step 20 was logged twice: the later 0.50 replaces 0.60.
    assert (extraction["last"], extraction["last_step"]) == (pytest.approx(0.45), 30)
    assert (extraction["best"], extraction["best_step"]) == (pytest.approx(0.50), 20)
    assert extraction["delta"] == pytest.approx(0.05)
    sentiment = rewards["cand", "eval/sentiment"]  # the NaN at step 20 is not a value
    assert (sentiment["points"], sentiment["best"], sentiment["delta"]) == (2, pytest.approx(0.55), pytest.approx(0.07))
    assert rewards["base", "eval/extraction"]["delta"] == pytest.approx(0.0)


def test_eval_rewards_of_a_run_without_metrics_is_empty(camp: Campaign) -> None:
    with opened(camp) as db:
        assert compare.eval_rewards(db, ["nobody"]) == []


def test_cli_diff_json_and_text(camp: Campaign) -> None:
    done = tunedeck_here("bench", "diff", "cand", "--against", "base", "--json", "--campaign", str(camp.root))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) >= {"kept", "lost", "gained", "still_failing", "flaky", "p_value"}
    assert data["lost"] == ["code:T/6", "code:T/7", "code:T/8"]
    text = tunedeck_here("bench", "diff", "cand", "--against", "base", "--campaign", str(camp.root))
    assert "LOST (3):" in text.stdout
    assert "code:T/3   ~ flaky" in text.stdout
    no_production = tunedeck_here("bench", "diff", "cand", "--campaign", str(camp.root))
    assert no_production.returncode == 2
    assert "production.json: no run is in production yet" in no_production.stderr
    assert "Traceback" not in no_production.stderr
    bad = tunedeck_here("bench", "diff", "../x", "--against", "base", "--campaign", str(camp.root))
    assert bad.returncode == 2
    assert "CANDIDATE" in bad.stderr


def test_cli_show(camp: Campaign) -> None:
    done = tunedeck_here("bench", "show", "--json", "--campaign", str(camp.root))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {(r["run"], r["bench"]) for r in data["pass_rates"]} == {
        ("base", "code"), ("base", "madison"), ("cand", "code"), ("cand", "madison")
    }  # fmt: skip
    assert data["flaky"] == [{"run": "cand", "bench": "code", "task_id": "T/3", "samples": 2, "samples_passed": 1}]
    assert data["judged"]["cand"]["madison"]["overall"] == pytest.approx((9.0 + 7.85) / 2)
