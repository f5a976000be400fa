"""The Runs screen's "new run" (n) and "start" (r on a run that never ran), against the real engine app in process.

bd6's runs have no base model on disk, so the engine refuses every start: what is checked here is
that the request reaches the engine with what the person typed, and that its refusal comes back
as a notification naming the cause (the happy path, a run really queued, is tests/test_new_run.py's).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui_fixtures import SIZE, bd6_copy, tui_app
from tui.app import TunedeckApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.prompt import PromptScreen


@pytest.fixture
def bd6(tmp_path: Path) -> Path:
    root = bd6_copy(tmp_path)
    (root / "drafts").mkdir()
    (root / "drafts" / "bd6.9.toml").write_text('dataset = "datasets/train.jsonl"\n[train]\nmax_steps = 0\n')
    fresh = root / "runs" / "bd6.9b"
    fresh.mkdir()
    (fresh / "run.toml").write_text('dataset = "datasets/missing.jsonl"\n')
    return root


async def rows_loaded(app: TunedeckApp, pilot: object) -> None:
    for _ in range(60):
        if app.runs_screen.is_mounted and app.runs_screen.table.row_count >= 3:
            return
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise AssertionError("the runs table never filled")


def notifications(app: TunedeckApp) -> list[str]:
    return [n.message for n in app._notifications]


async def wait_for_notification(app: TunedeckApp, pilot: object, text: str) -> str:
    for _ in range(60):
        found = [m for m in notifications(app) if text in m]
        if found:
            return found[0]
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise AssertionError(f"no notification with {text!r}: {notifications(app)}")


@pytest.mark.parametrize(
    ("typed", "refusal"),
    [
        ("drafts/bd6.9.toml", "max_steps"),  # the engine validates the file: max_steps = 0 is named
        ("drafts/none.toml", "no such file: drafts/none.toml"),
        ("../elsewhere.toml", "not inside the campaign folder"),
    ],
)
async def test_new_run_sends_the_typed_path_and_shows_the_refusal(bd6: Path, typed: str, refusal: str) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await rows_loaded(app, pilot)
        await pilot.press("n")
        await pilot.pause(0.1)
        assert isinstance(app.screen, PromptScreen)
        await pilot.press("enter")  # nothing typed: the dialog stays and says so
        assert isinstance(app.screen, PromptScreen)
        for key in typed:
            await pilot.press(key)
        await pilot.press("enter")
        await wait_for_notification(app, pilot, refusal)
        assert not isinstance(app.screen, PromptScreen)
        assert not (bd6 / "runs" / "bd6.9").exists()


async def test_escape_cancels_a_new_run(bd6: Path) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await rows_loaded(app, pilot)
        await pilot.press("n", "x", "escape")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, PromptScreen)
        assert notifications(app) == []


async def test_r_on_a_run_that_never_ran_asks_to_start_it(bd6: Path) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await rows_loaded(app, pilot)
        table = app.runs_screen.table
        names = [row.value for row in table.rows]
        table.move_cursor(row=names.index("bd6.9b"))
        await pilot.press("r")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question.startswith("Start bd6.9b?")
        await pilot.press("y")
        await wait_for_notification(app, pilot, "bd6.9b/run.toml: base: no base model")
