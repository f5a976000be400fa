"""`tunedeck FOLDER` on a folder of campaigns: the picker lists them (broken ones with their error), returns one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.store.campaign import Campaign
from tests.helpers import REPO
from tui.picker import CampaignPicker, describe, find_campaigns


def folder_of_campaigns(tmp_path: Path) -> Path:
    top = tmp_path / "campaigns"
    Campaign.create(top / "alpha", "Alpha campaign")
    beta = Campaign.create(top / "beta", "Beta campaign")
    (beta.root / "production.json").write_text('{"run": "b1", "artifact": "runs/b1/merged"}')
    for run in ("b1", "b2"):
        (beta.root / "runs" / run).mkdir(parents=True)
        (beta.root / "runs" / run / "run.toml").write_text('dataset = "d.jsonl"\n')
    (top / "broken").mkdir()
    (top / "broken" / "campaign.toml").write_text("name = [unclosed\n")
    (top / "notes").mkdir()  # no campaign.toml: not listed
    return top


def test_find_and_describe(tmp_path: Path) -> None:
    top = folder_of_campaigns(tmp_path)
    assert [p.name for p in find_campaigns(top)] == ["alpha", "beta", "broken"]
    beta = describe(top / "beta")
    assert (beta.title, beta.detail, beta.error) == ("Beta campaign", "2 run(s), production b1", None)
    broken = describe(top / "broken")
    assert broken.error is not None
    assert "campaign.toml" in broken.detail


async def test_enter_returns_the_chosen_campaign(tmp_path: Path) -> None:
    top = folder_of_campaigns(tmp_path)
    app = CampaignPicker(top, find_campaigns(top))
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.press("down", "enter")
    assert app.return_value == top / "beta"


async def test_escape_leaves_without_a_campaign(tmp_path: Path) -> None:
    top = folder_of_campaigns(tmp_path)
    app = CampaignPicker(top, find_campaigns(top))
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.press("escape")
    assert app.return_value is None


def test_a_folder_without_campaigns_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tui", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr == f"tunedeck: no campaign.toml in {tmp_path}, nor in a folder inside it\n"
