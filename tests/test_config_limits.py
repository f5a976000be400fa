"""Configs and rows that once passed and then crashed a worker (or every query) are refused up front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import ConfigError, TunedeckError
from engine.store.campaign import Campaign
from engine.store.config import OPTIMIZERS, RunConfig, validate_toml
from engine.store.datasets import MAX_ROW_CHARS, load_rows
from tests.helpers import tunedeck

BASE = 'dataset = "datasets/train.jsonl"\n'


@pytest.mark.parametrize(
    ("toml", "field", "says"),
    [
        ("[train]\nseed = -1\n", "train.seed", "greater than or equal to 0"),
        ("[train]\nseed = 5000000000\n", "train.seed", "less than or equal to 4294967295"),
        ('[train]\noptim = "adamw_turbo"\n', "train.optim", "unknown optimizer 'adamw_turbo'"),
        ("[train]\nlearning_rate = inf\n", "train.learning_rate", "finite number"),
        ("[train]\nlearning_rate = nan\n", "train.learning_rate", "finite number"),
        ("[train]\nlearning_rate = 0.0\n", "train.learning_rate", "greater than 0"),
        ("[train]\nlearning_rate = -1e-4\n", "train.learning_rate", "greater than 0"),
        ("[train]\nepochs = inf\n", "train.epochs", "finite number"),
        ("[lora]\nr = 100000\n", "lora.r", "less than or equal to 4096"),
        ('[[replicate]]\nclass = "anchor"\nfactor = 1e12\n', "replicate.0.factor", "less than or equal to 1000"),
        ("[weights]\ndefault = inf\n", "weights.default", "finite number"),
        ("[[weights.rules]]\ntask_id = 'a'\nweight = -1.0\n", "weights.rules.0.weight", "greater than or equal"),
        ('[train]\nbatch_size = "4"\n', "train.batch_size", "valid integer"),
        ('[train]\nload_in_4bit = "yes"\n', "train.load_in_4bit", "valid boolean"),
        ("[train]\nmax_steps = 1.5\n", "train.max_steps", "valid integer"),
    ],
)
def test_unreasonable_settings_are_refused_with_their_line(toml: str, field: str, says: str) -> None:
    text = BASE + toml
    with pytest.raises(ConfigError) as caught:
        validate_toml(Path("run.toml"), text, RunConfig)
    error = caught.value
    assert error.field == field
    assert says in error.message, error.message
    key = field.split(".")[-1] if not field.split(".")[-1].isdigit() else field.split(".")[-2]
    assert error.line is not None
    assert key in text.splitlines()[error.line - 1] or "[[" in text.splitlines()[error.line - 1]


def test_good_settings_still_pass() -> None:
    text = BASE + "[train]\nseed = 4294967295\nlearning_rate = 1\nepochs = 3\noptim = 'adafactor'\n[lora]\nr = 64\n"
    config = validate_toml(Path("run.toml"), text, RunConfig)
    assert config.train.learning_rate == 1.0  # an integer where a float belongs is still a number
    assert config.lora.r == 64


def test_the_optimizer_list_is_transformers_own() -> None:
    from transformers.training_args import OptimizerNames

    assert tuple(name.value for name in OptimizerNames) == OPTIMIZERS


def test_through_the_cli_a_bad_config_is_one_line_and_exit_2(campaign: Campaign, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BASE + '[train]\nbatch_size = "4"\n')
    done = tunedeck("run", str(path), "--campaign", str(campaign.root))
    assert done.returncode == 2
    assert done.stderr.strip() == f"tunedeck: {path}:3: train.batch_size: Input should be a valid integer (got '4')"
    assert not campaign.run("bad").root.exists()


def test_a_huge_dataset_row_is_refused_before_any_worker(campaign: Campaign, tmp_path: Path) -> None:
    data = campaign.root / "datasets" / "huge.jsonl"
    big = "x" * (MAX_ROW_CHARS + 10)
    data.write_text(
        json.dumps({"prompt": "a", "completion": "b"}) + "\n" + json.dumps({"prompt": big, "completion": "c"}) + "\n"
    )
    with pytest.raises(TunedeckError, match=r"line is 4,194,3\d\d characters, over the 4,194,304"):
        load_rows(data)
    path = tmp_path / "huge.toml"
    path.write_text('dataset = "datasets/huge.jsonl"\n')
    done = tunedeck("run", str(path), "--campaign", str(campaign.root))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert f"{data}:2: line is" in done.stderr


def test_a_bench_row_with_an_out_of_range_sample_is_refused_and_the_rest_imported(
    campaign: Campaign, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        '{"bench": "b", "task_id": "t1", "passed": true, "sample": 0}\n'
        '{"bench": "b", "task_id": "t2", "passed": true, "sample": 3000000000}\n'
    )
    done = tunedeck("bench", "import", str(rows), "--run", "r1", "--campaign", str(campaign.root), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 1
    assert f"{rows}:2: sample: expected an integer from 0 to 2147483647, got 3000000000" in done.stderr

    # The same row edited into the canonical file by hand: named, skipped, and every query still answers.
    canonical = campaign.root / "bench" / "r1" / "b.jsonl"
    with canonical.open("a") as handle:
        handle.write('{"run": "r1", "bench": "b", "task_id": "t3", "passed": true, "sample": 3000000000}\n')
    shown = tunedeck("bench", "show", "--campaign", str(campaign.root), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["pass_rates"][0]["total"] == 1
    assert "sample" in shown.stderr
