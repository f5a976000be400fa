"""The Decide screen (key 4) against the real engine app in process: walk, answer an ask, create the next run."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.tui_fixtures import bd6_copy, tui_app
from tui.app import TunedeckApp
from tui.screens.choice import ChoiceScreen
from tui.screens.decide import DecideScreen
from tui.screens.prompt import PromptScreen
from tui.widgets.decision_walk import FactsTable, WalkPath

SIZE = (160, 45)
# bd6's own tree, with an ask in front: is the candidate's GPU budget spent? (a person knows; the files do not)
ASK_TREE = """\
start = "budget"

[facts.rank]
kind = "config"
key = "lora.r"

[facts.gate]
kind = "gate"

[nodes.budget]
ask = "budget"
question = "Is there GPU budget left for another run?"
facts = ["gate"]
choices = { yes = "rank", no = "stop-here" }

[nodes.rank]
fact = "rank"
op = "<"
value = 16
then = "rank-bump"
else = "stop-here"

[leaves.stop-here]
title = "Stop the campaign here"

[leaves.rank-bump]
title = "Bump the LoRA rank"
facts = ["rank"]
[leaves.rank-bump.config_patch]
lora = { r = 16, alpha = 32 }
"""


@pytest.fixture
def bd6(tmp_path: Path) -> Path:
    return bd6_copy(tmp_path)  # bd6's bench results and tree; runs bd6.8d (production) and bd6.8d2


def last_message(app: TunedeckApp) -> str:
    return [n.message for n in app._notifications][-1]


async def open_decide(app: TunedeckApp, pilot: object, run: str) -> DecideScreen:
    for _ in range(60):
        if app.runs_screen.is_mounted and run in [r.value for r in app.runs_screen.table.rows]:
            break
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    table = app.runs_screen.table
    table.move_cursor(row=[r.value for r in table.rows].index(run))
    await pilot.press("4")  # type: ignore[attr-defined]
    screen = app.screen
    assert isinstance(screen, DecideScreen)
    await until_walked(screen, pilot)
    return screen


async def until_walked(screen: DecideScreen, pilot: object, previous: object = None) -> None:
    for _ in range(100):
        if screen.walk_result is not None and screen.walk_result is not previous:
            return
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise AssertionError("the walk never came back")


async def test_the_bd6_walk_recommends_the_rank_bump(bd6: Path) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_decide(app, pilot, "bd6.8d2")
        walk = screen.walk_result
        assert walk is not None
        assert walk.recommendation is not None
        assert walk.recommendation.id == "rank-bump"
        assert walk.recommendation.config_patch["lora"] == {"r": 16, "alpha": 32}
        path = screen.query_one(WalkPath)
        assert path.row_count == len(walk.path)
        assert [str(path.get_row_at(i)[0]) for i in range(path.row_count)] == walk.path
        assert screen.query_one(FactsTable).row_count == len(walk.facts)
        assert list((bd6 / "runs" / "bd6.8d2" / "decisions").glob("*.json")), "the walk was not saved"


async def test_an_ask_is_answered_then_the_next_run_is_created(bd6: Path) -> None:
    (bd6 / "tree.toml").write_text(ASK_TREE)
    app = tui_app(bd6)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_decide(app, pilot, "bd6.8d2")
        assert screen.walk_result is not None
        assert screen.walk_result.status == "question"
        await pilot.press("c")  # nothing to create yet: it says so
        await pilot.pause(0.1)
        assert "no recommendation yet" in last_message(app)
        before = screen.walk_result
        await pilot.press("a")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ChoiceScreen)
        assert app.screen.choices == ["yes", "no"]
        await pilot.press("enter")  # the first choice: yes
        await until_walked(screen, pilot, before)
        walk = screen.walk_result
        assert walk is not None
        assert walk.recommendation is not None
        assert (walk.answers, walk.recommendation.id) == ({"budget": "yes"}, "rank-bump")

        await pilot.press("c")
        await pilot.pause(0.1)
        assert isinstance(app.screen, PromptScreen)
        assert app.screen.value == "bd6.8d2-rank-bump"
        await pilot.press("enter")
        for _ in range(60):
            if (bd6 / "runs" / "bd6.8d2-rank-bump" / "run.toml").exists():
                break
            await pilot.pause(0.05)
        config = tomllib.loads((bd6 / "runs" / "bd6.8d2-rank-bump" / "run.toml").read_text())
        assert (config["lora"]["r"], config["lora"]["alpha"]) == (16, 32)

        await pilot.press("c", "enter")  # the same name again: the engine refuses to overwrite
        for _ in range(60):
            if len(app._notifications) >= 3:
                break
            await pilot.pause(0.05)
        assert "already" in last_message(app)


async def test_no_tree_is_a_notification_not_a_crash(bd6: Path) -> None:
    (bd6 / "tree.toml").unlink()
    app = tui_app(bd6)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_decide_without_walk(app, pilot)
        assert "tree" in last_message(app)


async def open_decide_without_walk(app: TunedeckApp, pilot: object) -> None:
    for _ in range(60):
        if app.runs_screen.is_mounted and app.runs_screen.table.row_count:
            break
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    await pilot.press("4")  # type: ignore[attr-defined]
    for _ in range(60):
        if app._notifications:
            return
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise AssertionError("no notification")
