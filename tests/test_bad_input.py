"""Bad input: one clear line naming file, line and field; exit status 2; nothing on disk changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine.store.campaign import Campaign
from tests.helpers import tunedeck, tunedeck_here, write_jsonl


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a hash of its content (folders as markers)."""
    state = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        state[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return state


def _refused(campaign: Campaign, *args: str) -> str:
    """Every refusal here comes before any process starts: the CLI runs in this process (the
    process itself is checked by test_no_campaign_here)."""
    before = _snapshot(campaign.root)
    done = tunedeck_here(*args, "--campaign", str(campaign.root))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert _snapshot(campaign.root) == before
    return lines[0]


@pytest.fixture
def outside_toml(tmp_path: Path) -> Path:
    return tmp_path / "next.toml"


def test_malformed_run_toml(campaign: Campaign, outside_toml: Path) -> None:
    outside_toml.write_text('name = "r2"\ndataset = "datasets/train.jsonl"\n[train\nbatch_size = 4\n')
    line = _refused(campaign, "run", str(outside_toml))
    assert line.startswith(f"tunedeck: {outside_toml}:3: not valid TOML")


def test_unknown_field(campaign: Campaign, outside_toml: Path) -> None:
    outside_toml.write_text(
        'name = "r2"\ndataset = "datasets/train.jsonl"\n[train]\nbatch_size = 4\nlearnign_rate = 1e-4\n'
    )
    line = _refused(campaign, "run", str(outside_toml))
    assert line == f"tunedeck: {outside_toml}:5: train.learnign_rate: unknown field"


def test_invalid_value(campaign: Campaign, outside_toml: Path) -> None:
    outside_toml.write_text('name = "r2"\ndataset = "datasets/train.jsonl"\n[lora]\nr = 0\n')
    line = _refused(campaign, "run", str(outside_toml))
    assert line.startswith(f"tunedeck: {outside_toml}:4: lora.r: ")


def test_dataset_line_that_is_not_json(campaign: Campaign, outside_toml: Path) -> None:
    data = campaign.root / "datasets" / "broken.jsonl"
    write_jsonl(data, [{"prompt": "a", "completion": "b"}] * 3)
    with open(data, "a") as handle:
        handle.write('{"prompt": "x", "completion": \n{"prompt": "y", "completion": "z"}\n')
    outside_toml.write_text('name = "r2"\ndataset = "datasets/broken.jsonl"\n')
    line = _refused(campaign, "run", str(outside_toml))
    assert line.startswith(f"tunedeck: {data}:4: not valid JSON")


def test_dataset_row_with_a_missing_field(campaign: Campaign, outside_toml: Path) -> None:
    data = write_jsonl(
        campaign.root / "datasets" / "partial.jsonl", [{"prompt": "a", "completion": "b"}, {"prompt": "a"}]
    )
    outside_toml.write_text('name = "r2"\ndataset = "datasets/partial.jsonl"\n')
    line = _refused(campaign, "run", str(outside_toml))
    assert line.startswith(f"tunedeck: {data}:2: completion: missing")


def test_missing_dataset(campaign: Campaign, outside_toml: Path) -> None:
    outside_toml.write_text('name = "r2"\ndataset = "datasets/nope.jsonl"\n')
    line = _refused(campaign, "run", str(outside_toml))
    assert line.startswith(f"tunedeck: {outside_toml}: dataset: dataset file not found")


@pytest.mark.parametrize("name", ["../escape", "a/b", ".."])
def test_run_name_that_could_escape(campaign: Campaign, outside_toml: Path, name: str) -> None:
    outside_toml.write_text(f'name = "{name}"\ndataset = "datasets/train.jsonl"\n')
    line = _refused(campaign, "run", str(outside_toml))
    assert "name: invalid run name" in line
    assert not (campaign.root.parent / "escape").exists()


@pytest.mark.parametrize("name", ["../escape", "a/b"])
def test_run_name_on_other_commands(campaign: Campaign, name: str) -> None:
    assert "invalid run name" in _refused(campaign, "resume", name)
    assert "invalid run name" in _refused(campaign, "merge", name)


def test_existing_run_with_another_config_is_not_overwritten(campaign: Campaign, outside_toml: Path) -> None:
    run_dir = campaign.run("r2").root
    run_dir.mkdir(parents=True)
    (run_dir / "run.toml").write_text('dataset = "datasets/train.jsonl"\n')
    outside_toml.write_text('name = "r2"\ndataset = "datasets/train.jsonl"\n[lora]\nr = 4\n')
    assert "already exists with a different run.toml" in _refused(campaign, "run", str(outside_toml))


def test_unknown_run(campaign: Campaign) -> None:
    assert "no run named 'ghost'" in _refused(campaign, "merge", "ghost")


def test_trainer_state_import_errors_change_nothing(campaign: Campaign, tmp_path: Path) -> None:
    bad = tmp_path / "trainer_state.json"
    bad.write_text('{"log_history": [\n{"step": 1, "loss": 2.0},\n{"step": 2 "loss": 1.0}\n]}\n')
    line = _refused(campaign, "import", "trainer-state", str(bad), "--run", "imp")
    assert f"{bad}:3" in line


def test_no_campaign_here(tmp_path: Path) -> None:
    done = tunedeck("merge", "r1", "--campaign", str(tmp_path))
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"tunedeck: {tmp_path}: no campaign.toml here: pass --campaign DIR or run from a campaign folder"
    )
