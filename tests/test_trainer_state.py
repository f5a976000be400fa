"""Importing HF / TRL trainer_state.json files into a run's metrics.jsonl."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ImportFormatError, RunNameError
from engine.store.campaign import Campaign
from engine.store.jsonl import read_jsonl
from engine.store.metrics import read_metrics
from engine.store.trainer_state import import_trainer_state, read_trainer_state

DATA = Path(__file__).parent / "data" / "trainer_state"


@pytest.fixture
def campaign(tmp_path: Path) -> Campaign:
    return Campaign.create(tmp_path / "c", "t")


def listing(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for folders), to prove nothing changed."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def by_step(campaign: Campaign, run: str) -> dict[int, dict[str, Any]]:
    return {r["step"]: r for r in read_metrics(campaign.run(run).metrics)}


def test_hf_sft_train_eval_and_summary_share_steps(campaign: Campaign) -> None:
    summary = import_trainer_state(campaign, DATA / "hf_sft.json", "sft1")

    assert summary.run == "sft1"
    assert summary.created_run
    assert summary.records == 3  # steps 2, 4 (train + eval merged) and 5 (summary)
    assert summary.steps == 5
    assert summary.skipped == 0
    assert summary.reasons == []
    assert "eval_loss" in summary.metrics
    assert "train_loss" in summary.metrics
    assert summary.metrics == sorted(summary.metrics)

    rows = by_step(campaign, "sft1")
    assert sorted(rows) == [2, 4, 5]
    assert rows[4]["loss"] == 2.0831
    assert rows[4]["eval_loss"] == 1.9123
    assert rows[4]["learning_rate"] == 8.000000000000001e-05
    assert rows[5]["train_loss"] == 2.1808
    assert rows[5]["total_flos"] == 2105938329600.0
    # One line per step on disk: train and eval logs at step 4 were merged, not duplicated.
    assert len(read_jsonl(campaign.run("sft1").metrics)) == 3


def test_created_run_toml_round_trips(campaign: Campaign) -> None:
    import_trainer_state(campaign, DATA / "hf_sft.json", "sft1")

    config = campaign.load_run("sft1")
    assert config.name == "sft1"
    assert config.imported_from == str((DATA / "hf_sft.json").resolve())
    assert campaign.run_names() == ["sft1"]


def test_imported_from_with_quotes_and_backslashes_is_valid_toml(campaign: Campaign, tmp_path: Path) -> None:
    odd = tmp_path / 'we"ird\\dir ü'
    odd.mkdir()
    shutil.copy(DATA / "hf_sft.json", odd / "trainer_state.json")

    import_trainer_state(campaign, odd / "trainer_state.json", "odd")

    assert campaign.load_run("odd").imported_from == str((odd / "trainer_state.json").resolve())


def test_checkpoint_folder_is_accepted(campaign: Campaign, tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoint-5"
    checkpoint.mkdir()
    shutil.copy(DATA / "hf_sft.json", checkpoint / "trainer_state.json")

    summary = import_trainer_state(campaign, checkpoint, "ck")

    assert summary.records == 3
    assert campaign.load_run("ck").imported_from == str((checkpoint / "trainer_state.json").resolve())


def test_nan_and_infinity_survive_a_round_trip(campaign: Campaign) -> None:
    summary = import_trainer_state(campaign, DATA / "nan_no_summary.json", "nan")

    text = campaign.run("nan").metrics.read_text(encoding="utf-8")
    assert "NaN" in text
    assert "-Infinity" in text
    rows = by_step(campaign, "nan")
    assert rows[20]["grad_norm"] == math.inf
    assert math.isnan(rows[30]["grad_norm"])
    assert math.isnan(rows[30]["loss"])
    assert rows[30]["eval_loss"] == -math.inf
    # No summary entry: the last step is the last log, max_steps (500) is not invented.
    assert summary.steps == 30
    assert summary.records == 3
    assert "train_loss" not in summary.metrics


def test_float_artefacts_are_kept_exactly(campaign: Campaign) -> None:
    import_trainer_state(campaign, DATA / "trl_grpo.json", "grpo")

    rows = by_step(campaign, "grpo")
    assert rows[3]["epoch"] == 0.30000000000000004
    assert rows[2]["completions/mean_terminated_length"] == 180.33333333333334


def test_trl_keys_with_slashes_stay_flat(campaign: Campaign) -> None:
    grpo = import_trainer_state(campaign, DATA / "trl_grpo.json", "grpo")
    dpo = import_trainer_state(campaign, DATA / "trl_dpo.json", "dpo")

    rows = by_step(campaign, "grpo")
    assert rows[2]["eval/extraction"] == 0.8125
    assert rows[2]["frac_reward_zero_std"] == 0.75
    assert rows[2]["loss"] == 0.0002  # the train log at the eval's step is kept too
    assert rows[1]["rewards/accuracy_reward/mean"] == 0.375
    assert "eval/extraction" in grpo.metrics
    assert "completions/mean_length" in grpo.metrics
    assert not any(isinstance(v, dict) for r in rows.values() for v in r.values())

    dpo_rows = by_step(campaign, "dpo")
    assert dpo_rows[2]["rewards/chosen"] == 0.0175
    assert dpo_rows[2]["train_loss"] == 0.68165  # the summary shares step 2 with the last log
    assert "rewards/chosen" in dpo.metrics
    line = campaign.run("dpo").metrics.read_text(encoding="utf-8").splitlines()[0]
    assert '"rewards/chosen":0.0' in line


def test_read_trainer_state_returns_unmerged_records() -> None:
    records = read_trainer_state(DATA / "hf_sft.json")

    assert [r["step"] for r in records] == [2, 4, 4, 5]
    assert records[1]["loss"] == 2.0831
    assert "eval_loss" not in records[1]
    assert records[2]["eval_loss"] == 1.9123
    assert "loss" not in records[2]


def test_entries_without_a_usable_step_are_skipped_and_counted(campaign: Campaign) -> None:
    summary = import_trainer_state(campaign, DATA / "messy.json", "messy")

    # 2 without a step, 3 not objects, 2 with a bad step, 1 (step 10) with nothing numeric.
    assert summary.skipped == 8
    assert sorted(summary.reasons) == sorted(
        [
            "2 entries without a step",
            "3 entries that are not objects",
            "2 entries whose step is not a whole number >= 0",
            "1 entry with no numeric values",
        ]
    )
    rows = by_step(campaign, "messy")
    assert sorted(rows) == [4, 12]  # 12.0 is a whole number, taken as step 12
    # Strings, bools, lists and nulls are dropped; numbers are kept.
    assert rows[12] == {"step": 12, "epoch": 0.3, "loss": 2.3}
    assert summary.metrics == ["epoch", "learning_rate", "loss"]


def test_reimport_does_not_duplicate(campaign: Campaign) -> None:
    import_trainer_state(campaign, DATA / "hf_sft.json", "sft1")
    metrics = campaign.run("sft1").metrics
    first = metrics.read_text(encoding="utf-8")

    again = import_trainer_state(campaign, DATA / "hf_sft.json", "sft1")

    assert not again.created_run
    assert metrics.read_text(encoding="utf-8") == first
    assert len(first.splitlines()) == 3
    events = read_jsonl(campaign.run("sft1").events)
    assert [e["event"] for e in events] == ["imported", "imported"]
    assert events[0]["records"] == 3
    assert events[0]["steps"] == 5
    assert events[0]["source"] == str((DATA / "hf_sft.json").resolve())


def test_existing_run_keeps_its_toml_and_metrics_merge(campaign: Campaign) -> None:
    paths = campaign.run("live")
    paths.root.mkdir(parents=True)
    toml = 'name = "live"\ndescription = "hand written"\n\n[train]\nlearning_rate = 0.0001\n'
    paths.run_toml.write_text(toml, encoding="utf-8")
    paths.metrics.write_text(
        '{"step":2,"ts":1.5,"loss":9.0,"custom":1}\n{"step":1,"ts":1.0,"loss":3.0}\n', encoding="utf-8"
    )

    summary = import_trainer_state(campaign, DATA / "hf_sft.json", "live")

    assert not summary.created_run
    assert paths.run_toml.read_text(encoding="utf-8") == toml
    rows = by_step(campaign, "live")
    assert sorted(rows) == [1, 2, 4, 5]
    assert rows[1] == {"step": 1, "ts": 1.0, "loss": 3.0}
    # Imported values win per (step, metric); other metrics at that step are kept.
    assert rows[2]["loss"] == 2.4517
    assert rows[2]["custom"] == 1
    assert rows[2]["ts"] == 1.5


def test_empty_log_history_creates_an_empty_run(campaign: Campaign, tmp_path: Path) -> None:
    state = tmp_path / "trainer_state.json"
    state.write_text('{"log_history": [], "global_step": 0}', encoding="utf-8")

    summary = import_trainer_state(campaign, state, "empty")

    assert (summary.records, summary.steps, summary.metrics, summary.skipped) == (0, 0, [], 0)
    assert read_metrics(campaign.run("empty").metrics) == []


def test_invalid_json_names_the_line_and_changes_nothing(campaign: Campaign) -> None:
    before = listing(campaign.root)

    with pytest.raises(ImportFormatError) as info:
        import_trainer_state(campaign, DATA / "truncated.json", "broken")

    assert info.value.line == 5
    assert str(info.value).startswith(f"{DATA / 'truncated.json'}:5: not valid JSON")
    assert "\n" not in str(info.value)
    assert listing(campaign.root) == before


def test_bad_input_leaves_an_existing_run_untouched(campaign: Campaign) -> None:
    import_trainer_state(campaign, DATA / "hf_sft.json", "sft1")
    before = listing(campaign.root)

    with pytest.raises(ImportFormatError):
        import_trainer_state(campaign, DATA / "truncated.json", "sft1")

    assert listing(campaign.root) == before


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('{"global_step": 3}', "log_history", "missing"),
        ('{"log_history": {"step": 1}}', "log_history", "expected a list, got an object"),
        ("[1, 2]", None, "expected a JSON object at the top level, got a list"),
        ("", None, "not valid JSON"),
    ],
)
def test_wrong_shapes_are_rejected(
    campaign: Campaign, tmp_path: Path, text: str, field: str | None, message: str
) -> None:
    state = tmp_path / "trainer_state.json"
    state.write_text(text, encoding="utf-8")
    before = listing(campaign.root)

    with pytest.raises(ImportFormatError) as info:
        import_trainer_state(campaign, state, "r")

    assert info.value.field == field
    assert message in info.value.message
    assert info.value.path == str(state)
    assert listing(campaign.root) == before


def test_missing_file_and_non_utf8(campaign: Campaign, tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="file not found"):
        import_trainer_state(campaign, tmp_path / "nope.json", "r")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b'{"log_history": ["\xff\xfe"]}')
    with pytest.raises(ImportFormatError, match="not UTF-8"):
        import_trainer_state(campaign, binary, "r")
    assert not campaign.run("r").root.exists()


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "x..y"])
def test_bad_run_name_creates_nothing(campaign: Campaign, name: str) -> None:
    before = listing(campaign.root.parent)

    with pytest.raises(RunNameError):
        import_trainer_state(campaign, DATA / "hf_sft.json", name)

    assert listing(campaign.root.parent) == before


def test_fixtures_are_plain_json() -> None:
    # The fixtures double as documentation of real files: keep them loadable by json itself.
    for path in DATA.glob("*.json"):
        if path.name != "truncated.json":
            assert "log_history" in json.loads(path.read_text(encoding="utf-8"))
