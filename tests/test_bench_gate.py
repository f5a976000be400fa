"""The gate, the harvest and the bd6 session that reproduces seed 000's 19-anchor table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.bench.db import opened
from engine.bench.gate import evaluate_gate
from engine.bench.rows import bench_row
from engine.bench.store import write_bench
from engine.errors import ConfigError
from engine.store.campaign import Campaign
from engine.store.datasets import load_rows
from tests.bench_fixtures import BD6_SESSION, BENCH_CAMPAIGN, copy_campaign
from tests.helpers import tunedeck_here, write_jsonl

# Seed 000 (BD6.8D2 over-tuned), "Per-row v8b table".
SEED_KEPT = {
    *(f"mbpp:MBPP/{n}" for n in (17, 19, 20, 41, 51, 52, 64, 90, 93, 96, 99, 105)),
    "humaneval:HumanEval/53",
}
SEED_LOST = {"mbpp:MBPP/53", *(f"humaneval:HumanEval/{n}" for n in (23, 27, 34, 45, 85))}


@pytest.fixture
def camp(tmp_path: Path) -> Campaign:
    return copy_campaign(BENCH_CAMPAIGN, tmp_path / "c")


@pytest.fixture
def bd6(tmp_path: Path) -> Campaign:
    return copy_campaign(BD6_SESSION, tmp_path / "bd6")


def promote(campaign: Campaign, run: str) -> None:
    (campaign.root / "production.json").write_text(json.dumps({"run": run, "artifact": None, "promoted_at": None}))


def test_anchors_min_pass_rate_and_no_production(camp: Campaign) -> None:
    with opened(camp) as db:
        result = evaluate_gate(db, "cand")
    assert not result.passed
    data = result.model_dump(mode="json")
    assert data["anchors"] == {"total": 4, "passed": 2, "failed": ["T/6", "T/404"], "missing": ["T/404"]}
    assert data["reasons"] == ["anchors 2/4: failed T/6, T/404 (1 not evaluated)"]
    assert data["notes"] == ["max_lost not checked: nothing in production (production.json)"]
    assert data["pass_rates"]["code"]["pass_rate"] == pytest.approx(7 / 13)


def test_max_lost_against_production(camp: Campaign) -> None:
    promote(camp, "base")
    with opened(camp) as db:
        result = evaluate_gate(db, "cand")
    assert result.lost == ["code:T/6", "code:T/7", "code:T/8"]
    assert any(r.startswith("lost 3 rows against production base (max_lost = 0)") for r in result.reasons)
    # Rows production passes that the candidate never ran cannot count as kept: the gate says so.
    assert result.notes == ["2 rows production passes were not evaluated for cand: code:T/99, madison:q3"]


def test_a_checkpoint_is_gated_before_any_merge(camp: Campaign) -> None:
    """BD6.2's lesson: evaluate the previous wins on a checkpoint's adapter, abort if any fail."""
    promote(camp, "base")
    rows = [bench_row("cand@100", "code", f"T/{i}", True) for i in (1, 6, 9, 404)]
    rows += [bench_row("cand@100", "code", f"T/{i}", True) for i in (2, 3, 4, 5, 7, 8, 99)]
    write_bench(camp, "cand@100", "code", rows)
    done = tunedeck_here("gate", "cand", "--checkpoint", "100", "--json", "--campaign", str(camp.root))
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert data["run"] == "cand@100"
    assert data["passed"]
    assert data["anchors"]["passed"] == 4


def test_gate_exit_status_is_0_1_2(camp: Campaign) -> None:
    failing = tunedeck_here("gate", "cand", "--campaign", str(camp.root))
    assert failing.returncode == 1
    assert "gate FAILED for cand" in failing.stdout
    assert "T/404" in failing.stdout
    missing = tunedeck_here("gate", "ghost", "--campaign", str(camp.root))
    assert missing.returncode == 2
    assert "no bench results for 'ghost'" in missing.stderr
    (camp.root / "campaign.toml").write_text('name = "x"\n[gate]\nanchors = ["T/1"]\n')
    assert tunedeck_here("gate", "base", "--campaign", str(camp.root)).returncode == 0
    (camp.root / "campaign.toml").write_text('name = "x"\n[gate]\nmax_lost = -1\n')
    bad = tunedeck_here("gate", "base", "--campaign", str(camp.root))
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith(
        "campaign.toml:3: gate.max_lost: Input should be greater than or equal to 0 (got -1)"
    )
    (camp.root / "campaign.toml").write_text('name = "x"\n')
    none = tunedeck_here("gate", "base", "--campaign", str(camp.root))
    assert none.returncode == 2
    assert "no [gate] section" in none.stderr


def test_gate_needs_a_gate_section(tmp_path: Path) -> None:
    campaign = Campaign.create(tmp_path / "c", "c")
    write_bench(campaign, "r", "b", [bench_row("r", "b", "t", True)])
    with opened(campaign) as db, pytest.raises(ConfigError, match="no \\[gate\\] section"):
        evaluate_gate(db, "r")


# -- sessions/bd6 --------------------------------------------------------------------------


def test_bd6_diff_reproduces_the_seed_table(bd6: Campaign) -> None:
    done = tunedeck_here("bench", "diff", "bd6.8d2", "--json", "--campaign", str(bd6.root))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["baseline"] == "bd6.8d"
    assert data["baseline_is_production"]
    assert set(data["kept"]) == SEED_KEPT
    # Against BD6.8D: MBPP/53 "regressed from BD6.8D recovery", HE/23 "new regression";
    # HE/27, 34, 45, 85 were already lost in BD6.8D ("still lost").
    assert data["lost"] == ["humaneval:HumanEval/23", "mbpp:MBPP/53"]
    assert set(data["still_failing"]) == SEED_LOST - set(data["lost"])
    assert data["gained"] == []
    assert data["flaky"] == ["humaneval:HumanEval/34", "humaneval:HumanEval/45"]  # decoder noise
    # Against BD6 pass-1 (19/19), the seed's own LOST column exactly.
    pass1 = json.loads(
        tunedeck_here("bench", "diff", "bd6.8d2", "--against", "bd6", "--json", "--campaign", str(bd6.root)).stdout
    )
    assert set(pass1["kept"]) == SEED_KEPT
    assert set(pass1["lost"]) == SEED_LOST
    assert pass1["p_value"] == pytest.approx(2 * 0.5**6)


def test_bd6_gate_fails_with_13_of_19(bd6: Campaign) -> None:
    done = tunedeck_here("gate", "bd6.8d2", "--json", "--campaign", str(bd6.root))
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert not data["passed"]
    assert (data["anchors"]["total"], data["anchors"]["passed"]) == (19, 13)
    assert {f"{'mbpp' if t.startswith('MBPP') else 'humaneval'}:{t}" for t in data["anchors"]["failed"]} == SEED_LOST
    # The seed's headline table: BD6.5 and BD6.8D 15/19 each.
    for run in ("bd6.5", "bd6.8d"):
        other = json.loads(tunedeck_here("gate", run, "--json", "--campaign", str(bd6.root)).stdout)
        assert (other["anchors"]["passed"], other["anchors"]["total"]) == (15, 19)


# -- dataset harvest -----------------------------------------------------------------------


def test_harvest_fresh_failures_plus_anchors(bd6: Campaign, tmp_path: Path) -> None:
    refs = [
        {"task_id": f"MBPP/{n}", "prompt": f"Write function {n}.", "canonical_solution": f"def f{n}(): pass"}
        for n in (17, 19, 20, 41, 51, 52, 53, 64, 90, 93, 96, 99, 105)
    ]
    refs += [{"task_id": "HumanEval/23", "prompt": "def strlen(s):", "completion": "    return len(s)"}]
    refs += [{"task_id": "HumanEval/53", "prompt": "def add(a, b):", "completion": "    return a + b"}]
    refs_path = write_jsonl(tmp_path / "refs.jsonl", refs)
    refs_path.write_text(refs_path.read_text() + '{"task_id": "HumanEval/27"}\n')
    out = tmp_path / "next" / "train.jsonl"
    done = tunedeck_here(
        "dataset", "harvest", "--from", "bd6.8d2", "--refs", str(refs_path), "--anchors", "3", "--out", str(out),
        "--json", "--campaign", str(bd6.root),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["poison"], data["anchors"], data["rows"]) == (2, 3, 5)
    assert data["failed_without_ref"] == [f"humaneval:HumanEval/{n}" for n in (27, 34, 45, 85)]
    assert "refs.jsonl:16: prompt: missing" in done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["task_id"], r["class"]) for r in rows[:2]] == [("HumanEval/23", "poison"), ("MBPP/53", "poison")]
    assert all(r["class"] == "anchor" for r in rows[2:])

    assert {r["task_id"] for r in rows[2:]} <= {
        *(f"MBPP/{n}" for n in (17, 19, 20, 41, 51, 52, 64, 90, 93, 96, 99, 105)),
        "HumanEval/53",
    }
    # The dataset trains as it is: the engine's own loader accepts it, classes intact.
    loaded = load_rows(out, field="dataset")
    assert [row.row_class for row in loaded] == ["poison", "poison", "anchor", "anchor", "anchor"]
    # The same --out again is refused (it once overwrote campaign.toml); --force replaces it.
    before = (bd6.root / "campaign.toml").read_bytes()
    for target in (out, bd6.root / "campaign.toml"):
        again = tunedeck_here(
            "dataset", "harvest", "--from", "bd6.8d2", "--refs", str(refs_path), "--out", str(target),
            "--campaign", str(bd6.root),
        )  # fmt: skip
        assert again.returncode == 2
        assert again.stderr == f"tunedeck: {target}: --out: already exists; pass --force to replace it\n"
    assert (bd6.root / "campaign.toml").read_bytes() == before
    forced = tunedeck_here(
        "dataset", "harvest", "--from", "bd6.8d2", "--refs", str(refs_path), "--anchors", "1", "--out", str(out),
        "--force", "--json", "--campaign", str(bd6.root),
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert len(out.read_text().splitlines()) == 3


def test_harvest_without_usable_refs_is_a_clear_error(bd6: Campaign, tmp_path: Path) -> None:
    refs = tmp_path / "refs.jsonl"
    refs.write_text('{"task_id": "MBPP/53"}\n')
    done = tunedeck_here(
        "dataset", "harvest", "--from", "bd6.8d2", "--refs", str(refs), "--out", str(tmp_path / "o.jsonl"),
        "--campaign", str(bd6.root),
    )  # fmt: skip
    assert done.returncode == 2
    assert "refs.jsonl: no usable reference rows (1 skipped)" in done.stderr
    assert not (tmp_path / "o.jsonl").exists()
