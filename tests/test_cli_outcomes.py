"""One place prints: handlers return an Outcome that ``main`` writes; ``--checkpoint`` means one thing."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.api import WatchReport
from engine.cli.common import CHECKPOINT_HELP, Outcome
from engine.cli.main import build_parser, write_outcome
from engine.store.campaign import Campaign
from engine.store.trainer_state import import_trainer_state
from tests.helpers import REPO, tunedeck, tunedeck_here


def _subcommand(parser: argparse.ArgumentParser, *path: str) -> argparse.ArgumentParser:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("path", [("merge",), ("bench", "run"), ("gate",)])
def test_checkpoint_is_one_option_everywhere(path: tuple[str, ...]) -> None:
    options = {a.dest: a for a in _subcommand(build_parser(), *path)._actions}
    assert (options["checkpoint"].help, options["checkpoint"].metavar, options["checkpoint"].type) == (
        CHECKPOINT_HELP,
        "STEP",
        int,
    )


def test_merging_checkpoint_0_is_one_line_and_exit_2(tmp_path: Path) -> None:
    campaign = Campaign.create(tmp_path / "c", "outcomes")
    import_trainer_state(campaign, REPO / "tests" / "data" / "trainer_state" / "hf_sft.json", "r")
    done = tunedeck("merge", "r", "--checkpoint", "0", "--json", "--campaign", str(campaign.root))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "tunedeck: --checkpoint: 0 is the base model alone: there is no adapter to merge\n"


def test_main_writes_json_or_text_and_warnings_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    built: list[str] = []

    def text() -> str:
        built.append("text")
        return "no watch rule fired"

    outcome = Outcome(WatchReport(alerts=[]), text, code=1, warnings=["skipped a.jsonl:3: not valid JSON"])
    assert write_outcome(outcome, as_json=True) == 1
    out, err = capsys.readouterr()
    assert (json.loads(out), err) == ({"alerts": []}, "tunedeck: skipped a.jsonl:3: not valid JSON\n")
    assert built == []  # a costly text is never built for --json
    assert write_outcome(outcome, as_json=False) == 1
    assert capsys.readouterr().out == "no watch rule fired\n"


def test_a_reader_that_goes_away_is_no_error(tmp_path: Path) -> None:
    """`tunedeck bench show | head -0`: the pipe closes before the answer; no traceback, no 'internal error'."""
    campaign = REPO / "tests" / "data" / "bench_campaign"
    command = [
        sys.executable,
        "-c",
        "from engine.cli.main import main; main()",
        "bench",
        "show",
        "--campaign",
        str(campaign),
    ]
    reader, writer = os.pipe()
    os.close(reader)  # nobody will read
    done = subprocess.run(command, stdout=writer, stderr=subprocess.PIPE, text=True, check=False, timeout=60)
    os.close(writer)
    assert done.returncode == 141
    assert done.stderr == ""


def test_a_folder_given_as_run_toml_is_one_line(tmp_path: Path) -> None:
    campaign = Campaign.create(tmp_path / "c", "folder")
    (tmp_path / "r1.toml").mkdir()
    done = tunedeck_here("run", str(tmp_path / "r1.toml"), "--campaign", str(campaign.root))
    assert done.returncode == 2
    assert done.stderr == f"tunedeck: {tmp_path / 'r1.toml'}: cannot read (Is a directory)\n"
