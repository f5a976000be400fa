"""``bench import --format judged`` and what judged benches say when compared: coverage, noise, steps.

Rows come in through the real CLI (``tunedeck bench import``) into a real campaign and DuckDB;
``bench show`` / ``bench diff`` answer through the CLI too. No model is needed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from engine.store.campaign import Campaign
from tests.helpers import tunedeck, tunedeck_here, write_jsonl

WEIGHTS = "weights = { voice = 25, rhetorical = 20, historical = 20, position = 20, integrity = 15 }"
NAMES = ("voice", "rhetorical", "historical", "position", "integrity")


@pytest.fixture
def camp(tmp_path: Path) -> Campaign:
    created = Campaign.create(tmp_path / "campaign", "judged")
    with open(created.root / "campaign.toml", "a", encoding="utf-8") as handle:
        handle.write(f"[judge]\n{WEIGHTS}\n")
    return Campaign.open(created.root)


def _verdict(score: float, **extra: Any) -> dict[str, Any]:
    return {**dict.fromkeys(NAMES, score), **extra}


def _lines(categories: dict[str, tuple[str, int, float]], *, repeats: int = 1, seed: int = 0) -> list[dict[str, Any]]:
    """``{category: (prefix, prompts, score)}`` -> Foundry-style lines, judged ``repeats`` times each."""
    rng = random.Random(seed)
    lines = []
    for category, (prefix, count, score) in categories.items():
        for index in range(1, count + 1):
            for repeat in range(repeats):
                noisy = round(score + (rng.uniform(-1.5, 1.5) if repeats > 1 else 0), 2)
                lines.append({"prompt_id": f"{prefix}-{index:02d}", "category": category, "repeat": repeat,
                              "response": "Sir, ...", "judge": _verdict(noisy, overall_score=noisy - 0.3)})  # fmt: skip
    return lines


def _import(camp: Campaign, lines: list[dict[str, Any]], ref: str, name: str = "probe") -> dict[str, Any]:
    path = write_jsonl(camp.root.parent / f"{ref.replace('@', '_')}-{name}.jsonl", lines)
    done = tunedeck_here("bench", "import", str(path), "--run", ref, "--format", "judged", "--bench", name,
                         "--campaign", str(camp.root), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_raw_judge_texts_are_repaired_weighted_and_errors_kept_apart(camp: Campaign) -> None:
    fenced = "Evaluation:\n```json\n" + json.dumps(_verdict(6.0, overall_score=5.0)) + "\n```"
    nocomma = "{\n" + "\n".join(f'"{n}": 8' for n in NAMES) + "\n}"
    ptbr = "{" + ", ".join(f'"{n}": 7,5' for n in NAMES) + ', "critical_failures": ["anachronism"]}'
    lines: list[dict[str, Any]] = [
        {"id": "a-1", "category": "a", "judge_response": fenced},
        {"id": "a-2", "category": "a", "judge_response": nocomma},
        {"id": "a-3", "category": "a", "judge_response": ptbr},
        {"id": "a-4", "category": "a", "judge_response": '{"voice": 9, "rhetorical": 9'},  # 3 missing
        {"category": "a", "judge": _verdict(1)},  # no id: skipped
    ]
    summary = _import(camp, lines, "r1")
    assert summary["rows"] == 4
    assert summary["skipped"] == 1
    rows = {r["task_id"]: r for r in map(json.loads, (camp.root / "bench/r1/probe.jsonl").read_text().splitlines())}
    assert rows["a-1"]["score"] == 6.0
    assert rows["a-1"]["judge_overall"] == 5.0
    assert rows["a-2"]["scores"] == dict.fromkeys(NAMES, 8.0)
    assert rows["a-3"]["score"] == 7.5
    assert rows["a-3"]["passed"] is False
    assert rows["a-3"]["critical_failures"] == ["anachronism"]
    assert rows["a-4"]["scores"] is None
    assert rows["a-4"]["error"].startswith("judge error: ")
    show = json.loads(tunedeck_here("bench", "show", "r1", "--campaign", str(camp.root), "--json").stdout)
    bench = show["judged"]["r1"]["probe"]
    assert bench["rows"] == 3  # the judge error is not a 0 in the mean
    assert bench["overall"] == pytest.approx((6.0 + 8.0 + 7.5) / 3)


def test_judged_import_needs_the_campaigns_weights(tmp_path: Path) -> None:
    bare = Campaign.create(tmp_path / "bare", "bare")
    path = write_jsonl(tmp_path / "x.jsonl", [{"id": "a", "judge": _verdict(5)}])
    done = tunedeck_here(
        "bench", "import", str(path), "--run", "r1", "--format", "judged", "--campaign", str(bare.root)
    )
    assert done.returncode == 2
    assert "[judge] weights" in done.stderr
    assert "Traceback" not in done.stderr


FULL = {
    "ground_truth": ("gt", 8, 7.8),
    "position_discrimination": ("pd", 6, 9.25),
    "verified_response": ("vr", 8, 8.0),
}


def test_a_category_the_other_side_lacks_is_named_and_no_phantom_regression(camp: Campaign) -> None:
    _import(camp, _lines(FULL), "base@300")
    probe = {k: v for k, v in FULL.items() if k != "position_discrimination"}  # the 14-prompt probe: no PD
    _import(camp, _lines(probe), "cand@300")
    done = tunedeck("bench", "diff", "cand@300", "--against", "base@300", "--campaign", str(camp.root), "--json")
    assert done.returncode == 0, done.stderr
    judged = json.loads(done.stdout)["judged"]["probe"]
    assert judged["only_baseline_categories"] == ["position_discrimination"]
    assert "position_discrimination" not in judged["categories"]
    assert judged["delta"] == pytest.approx(0.0)  # not -9.25 on PD, not a diluted overall
    assert judged["baseline"] == pytest.approx(judged["candidate"])
    assert "position_discrimination" in done.stderr
    assert "not counted as 0" in done.stderr
    # The other way round: the candidate covers a category the baseline lacks.
    args = ("bench", "diff", "base@300", "--against", "cand@300", "--campaign", str(camp.root), "--json")
    back = json.loads(tunedeck_here(*args).stdout)
    assert back["judged"]["probe"]["only_candidate_categories"] == ["position_discrimination"]
    assert back["judged"]["probe"]["delta"] == pytest.approx(0.0)
    assert back["steps"] == {"candidate_step": 300, "baseline_step": 300, "same": True, "note": None}


def test_a_probe_against_a_longer_baseline_is_flagged(camp: Campaign) -> None:
    _import(camp, _lines(FULL), "base@300")
    _import(camp, _lines(FULL), "base@861")
    _import(camp, _lines(FULL), "cand@300")
    done = tunedeck_here("bench", "diff", "cand@300", "--against", "base@861", "--campaign", str(camp.root), "--json")
    steps = json.loads(done.stdout)["steps"]
    assert steps["same"] is False
    assert "unequal step counts" in steps["note"]
    assert "base@300 is the baseline at the same step (--same-step)" in steps["note"]
    assert "unequal step counts" in done.stderr
    # --same-step: the baseline run's checkpoint at the candidate's step, probe against probe.
    args = ("bench", "diff", "cand@300", "--against", "base@861", "--same-step", "--campaign", str(camp.root))
    same = json.loads(tunedeck_here(*args, "--json").stdout)
    assert (same["baseline"], same["steps"]["same"], same["steps"]["note"]) == ("base@300", True, None)
    _import(camp, _lines(FULL), "other@861")
    refused = tunedeck_here("bench", "diff", "cand@300", "--against", "other", "--same-step", "--campaign",
                            str(camp.root))  # fmt: skip
    assert refused.returncode == 2
    assert "no bench results for 'other@300', the baseline at cand@300's step" in refused.stderr
    assert "tunedeck bench run other --checkpoint 300" in refused.stderr


def test_repeats_give_intervals_and_a_delta_inside_the_noise_says_so(camp: Campaign) -> None:
    two = {"ground_truth": ("gt", 8, 7.8), "private_voice": ("pv", 6, 8.5)}
    _import(camp, _lines(two, repeats=3, seed=1), "base")
    shifted = {"ground_truth": ("gt", 8, 7.9), "private_voice": ("pv", 6, 8.5)}  # +0.1: under the noise
    _import(camp, _lines(shifted, repeats=3, seed=2), "cand")
    show = json.loads(tunedeck_here("bench", "show", "base", "--campaign", str(camp.root), "--json").stdout)
    bench = show["judged"]["base"]["probe"]
    assert bench["evaluations"] == 42
    for name, count in (("ground_truth", 8), ("private_voice", 6)):
        stats = bench["categories"][name]
        assert stats["rows"] == count
        assert stats["evaluations"] == 3 * count
        assert stats["ci_low"] < stats["mean"] < stats["ci_high"]
        assert 0.3 < stats["spread"] < 1.5  # uniform(-1.5, 1.5) has a standard deviation of 0.87
    done = tunedeck_here("bench", "diff", "cand", "--against", "base", "--campaign", str(camp.root))
    assert "inside the noise" in done.stdout
    diff = json.loads(tunedeck_here("bench", "diff", "cand", "--against", "base", "--campaign", str(camp.root),
                                    "--json").stdout)  # fmt: skip
    judged = diff["judged"]["probe"]
    assert judged["inside_noise"] is True
    assert judged["ci_low"] < judged["delta"] < judged["ci_high"]
    assert judged["categories"]["ground_truth"]["inside_noise"] is True
    text = tunedeck_here("bench", "show", "base", "--campaign", str(camp.root)).stdout
    assert "over 24 evaluations" in text  # ground_truth: 8 prompts x 3 repeats


def test_a_real_effect_is_outside_the_noise(camp: Campaign) -> None:
    _import(camp, _lines({"ground_truth": ("gt", 10, 6.0)}, repeats=3, seed=1), "base")
    _import(camp, _lines({"ground_truth": ("gt", 10, 8.5)}, repeats=3, seed=2), "cand")
    diff = json.loads(tunedeck_here("bench", "diff", "cand", "--against", "base", "--campaign", str(camp.root),
                                    "--json").stdout)  # fmt: skip
    judged = diff["judged"]["probe"]
    assert judged["delta"] == pytest.approx(2.5, abs=0.5)
    assert judged["inside_noise"] is False


def _import_auto(camp: Campaign, path: Path, ref: str, *extra: str) -> dict[str, Any]:
    done = tunedeck_here("bench", "import", str(path), "--run", ref, *extra, "--campaign", str(camp.root), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_format_auto_knows_a_judged_file_and_tunedeck_rows_keep_their_judge_fields(camp: Campaign) -> None:
    lines = _lines({"ground_truth": ("gt", 3, 7.0)})
    lines[1]["judge"] = "Here you go:\n```json\n" + json.dumps(_verdict(6.0, overall_score=9.0)) + "\n```"
    lines[2]["judge"] = {"voice": 9}  # incomplete: a judge error
    path = write_jsonl(camp.root.parent / "foundry-probe.jsonl", lines)
    assert _import_auto(camp, path, "r1", "--bench", "probe")["format"] == "judged"
    written = camp.root / "bench" / "r1" / "probe.jsonl"
    first = [json.loads(line) for line in written.read_text().splitlines()]
    assert first[1]["judge_overall"] == 9.0
    # What bench judge or --format judged wrote, imported again as tunedeck rows: nothing dropped.
    assert _import_auto(camp, written, "r2")["format"] == "tunedeck"
    again = [json.loads(line) for line in (camp.root / "bench" / "r2" / "probe.jsonl").read_text().splitlines()]
    assert again == [{**row, "run": "r2"} for row in first]
    show = json.loads(tunedeck_here("bench", "show", "--campaign", str(camp.root), "--json").stdout)
    assert show["judged"]["r2"]["probe"] == show["judged"]["r1"]["probe"]


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [("tokens_in", -3, "expected an integer >= 0"), ("critical_failures", "broke", "expected a list of strings"),
     ("judge_overall", "high", "expected a number or null"), ("judge_model", 7, "expected a string")],
)  # fmt: skip
def test_a_bad_judge_field_in_tunedeck_rows_is_named(camp: Campaign, field: str, value: Any, why: str) -> None:
    row = {"task_id": "a", "bench": "probe", "passed": True, "score": 5.0, field: value}
    path = write_jsonl(camp.root.parent / "rows.jsonl", [row, {**row, "task_id": "b", field: None}])
    summary = _import_auto(camp, path, "r1")
    assert summary["rows"] == 1
    assert summary["skipped"] == 1
    assert summary["reasons"][0].startswith(f"{path}:1: {field}: {why}")


def test_a_judge_error_is_no_evaluation_so_never_a_lost_row(camp: Campaign) -> None:
    lines = _lines({"ground_truth": ("gt", 4, 8.0)})
    _import(camp, lines, "base")
    unreadable = [dict(line) for line in lines]
    unreadable[0]["judge"] = '{"voice": 8, "rhetor'  # cut off: a judge error, not a failed answer
    _import(camp, unreadable, "cand")
    done = tunedeck_here("bench", "diff", "cand", "--against", "base", "--campaign", str(camp.root), "--json")
    assert done.returncode == 0, done.stderr
    diff = json.loads(done.stdout)
    assert diff["lost"] == []
    assert diff["kept"] == ["probe:gt-02", "probe:gt-03", "probe:gt-04"]
    assert diff["only_baseline"] == ["probe:gt-01"]
    rates = json.loads(tunedeck_here("bench", "show", "cand", "--campaign", str(camp.root), "--json").stdout)
    assert [(r["passed"], r["total"]) for r in rates["pass_rates"]] == [(3, 3)]
