"""The campaign on disk: JSONL writers and readers, metric keying, config validation, run names."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from engine.errors import ConfigError, NotFoundError, RunNameError, TunedeckError
from engine.store.campaign import Campaign
from engine.store.checkpoints import complete_checkpoints, newest_complete_checkpoint
from engine.store.config import CampaignConfig, RunConfig, load_toml
from engine.store.jsonl import JsonlWriter, read_jsonl
from engine.store.metrics import merge_by_step, read_metrics
from engine.store.names import validate_run_name


def test_writer_appends_whole_lines_and_keeps_nan(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    with JsonlWriter(path) as writer:
        writer.write({"step": 1, "loss": float("nan"), "grad_norm": float("inf")})
        writer.write({"step": 2, "loss": 0.5})
    text = path.read_text()
    assert text.endswith("\n")
    assert "NaN" in text.splitlines()[0]
    records = read_jsonl(path)
    assert math.isnan(records[0]["loss"])
    assert records[0]["grad_norm"] == math.inf
    assert records[1] == {"step": 2, "loss": 0.5}


def test_reader_tolerates_a_torn_last_line_only(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "lo')
    assert read_jsonl(path) == [{"step": 1, "loss": 1.0}]
    path.write_text('{"step": 1}\n{"step": 2, "lo\n{"step": 3}\n')
    with pytest.raises(TunedeckError, match=r"m\.jsonl:2: not valid JSON"):
        read_jsonl(path)


def test_metrics_keyed_by_step_and_metric() -> None:
    records = [
        {"step": 10, "ts": 1.0, "loss": 2.0, "grad_norm": 1.0},
        {"step": 10, "ts": 1.1, "eval_loss": 2.5},  # eval shares the step: merged, not dropped
        {"step": 20, "ts": 1.2, "loss": 1.5},
        {"step": 10, "ts": 2.0, "loss": 1.9},  # replayed after a resume: the later value wins
    ]
    merged = merge_by_step(records)
    assert [r["step"] for r in merged] == [10, 20]
    assert merged[0] == {"step": 10, "ts": 2.0, "loss": 1.9, "grad_norm": 1.0, "eval_loss": 2.5}


def test_read_metrics_skips_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": NaN}\n{"step": 1, "eval_loss": 3.0}\n{"step": 2, "loss"')
    (record,) = read_metrics(path)
    assert math.isnan(record["loss"])
    assert record["eval_loss"] == 3.0


def test_campaign_with_only_a_name_is_valid(tmp_path: Path) -> None:
    (tmp_path / "campaign.toml").write_text('name = "bd6"\n')
    assert Campaign.open(tmp_path).config == CampaignConfig(name="bd6")


def test_missing_campaign_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no campaign.toml here"):
        Campaign.open(tmp_path)


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('dataset = "d.jsonl"\n[train]\nlearning_rate = = 3\n')
    with pytest.raises(ConfigError) as info:
        load_toml(path, RunConfig)
    assert str(info.value).startswith(f"{path}:3: not valid TOML")


def test_unknown_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('dataset = "d.jsonl"\n\n[lora]\nr = 8\nrank_typo = 16\n')
    with pytest.raises(ConfigError) as info:
        load_toml(path, RunConfig)
    assert str(info.value) == f"{path}:5: lora.rank_typo: unknown field"


def test_invalid_value_in_array_of_tables(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        '[[weights.rules]]\nclass = "anchor"\nweight = 2.0\n\n[[weights.rules]]\nclass = "poison"\nweight = -1\n'
    )
    with pytest.raises(ConfigError) as info:
        load_toml(path, RunConfig)
    assert str(info.value).startswith(f"{path}:7: weights.rules.1.weight: ")


def test_full_run_toml_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        """
name = "bd6.8d2"
dataset = "datasets/bd6_5_mixed_train.jsonl"
[lora]
r = 8
alpha = 16
[train]
learning_rate = 5e-5
lr_scheduler = "constant_with_warmup"
warmup_ratio = 0.05
epochs = 1
save_steps = 100
[kl]
lambda = 0.05
[[replicate]]
class = "anchor"
factor = 2
[[weights.rules]]
task_id = "MBPP/53"
weight = 2.0
[[weights.rules]]
class = "poison"
task_id = "MBPP/*"
min_tokens = 100
weight = 0.5
"""
    )
    config = load_toml(path, RunConfig)
    assert config.kl.lam == 0.05
    assert config.train.lr_scheduler == "constant_with_warmup"
    assert config.weights.rules[1].row_class == "poison"
    assert config.replicate[0].factor == 2


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".hidden", "x..y", "", "a b", "a" * 101])
def test_bad_run_names_are_refused(name: str) -> None:
    with pytest.raises(RunNameError, match="invalid run name"):
        validate_run_name(name)


@pytest.mark.parametrize("name", ["bd6.8d2", "qwen3-r2", "V4_1", "r1"])
def test_good_run_names(name: str) -> None:
    assert validate_run_name(name) == name


def test_empty_or_torn_checkpoint_folders_are_not_complete(tmp_path: Path) -> None:
    state = '{"global_step": 1, "log_history": []}'
    cases = {
        100: (state, b"weights"),  # complete
        200: (state, b"weights"),  # complete: the newest of those
        300: (None, None),  # empty folder: killed at the start of a save
        400: ("", b"weights"),  # 0-byte trainer_state.json: once made every resume fail
        500: ('{"global_st', b"weights"),  # torn trainer_state.json
        600: (state, None),  # state but no weights
        700: (state, b""),  # 0-byte weights
        800: ("[]", b"weights"),  # parses, but is not Trainer's state
    }
    for step, (text, weights) in cases.items():
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if text is not None:
            (folder / "trainer_state.json").write_text(text)
        if weights is not None:
            (folder / "adapter_model.safetensors").write_bytes(weights)
    assert sorted(complete_checkpoints(tmp_path)) == [100, 200]
    assert newest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-200"
