"""Pilot tests of the Registry screen (key 5) against the real engine app in process, on a copy of sessions/bd6."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_registry import make_merged
from tests.tui_fixtures import SIZE, bd6_copy, tui_app
from tui.app import TunedeckApp
from tui.screens.registry import RegistryScreen
from tui.screens.registry_confirm import RegistryConfirmScreen


@pytest.fixture
def bd6(tmp_path: Path) -> Path:
    """bd6 with bd6.8d in production and a merged model for bd6.8d2 to promote."""
    root = bd6_copy(tmp_path)
    make_merged(root / "runs" / "bd6.8d2")
    return root


async def _until(pilot: object, check: object, what: str) -> None:
    for _ in range(100):
        if check():  # type: ignore[operator]
            return
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise AssertionError(f"never: {what}")


async def _open_registry_on(app: TunedeckApp, pilot: object, run: str) -> RegistryScreen:
    await _until(pilot, lambda: app.runs_screen.is_mounted and app.runs_screen.table.row_count == 2, "runs listed")
    if run == "bd6.8d2":
        await pilot.press("down")  # type: ignore[attr-defined]
    await pilot.press("5")  # type: ignore[attr-defined]
    screen = app.registry_screen
    await _until(pilot, lambda: screen.runs_table.row_count == 2, "registry runs listed")
    return screen


def _notes(app: TunedeckApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_registry_shows_production_and_refuses_a_failing_gate(bd6: Path) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_registry_on(app, pilot, "bd6.8d2")
        assert isinstance(app.screen, RegistryScreen)
        panel = str(screen.query_one("#registry-production").render())
        assert "bd6.8d" in panel
        assert "runs/bd6.8d/merged" in panel
        assert screen.runs_table.selected_run == "bd6.8d2"  # the run selected on Runs
        await pilot.press("P")
        await _until(pilot, lambda: isinstance(app.screen, RegistryConfirmScreen), "confirmation shown")
        gate = str(app.screen.query_one("#registry-gate").render())
        assert "FAILED" in gate
        assert "MBPP/53" in gate
        assert "HumanEval/23" in gate
        await pilot.press("enter")  # no reason typed: nothing happens but a word about it
        await pilot.pause(0.1)
        assert isinstance(app.screen, RegistryConfirmScreen)
        assert any("type a reason" in n for n in _notes(app))
        await pilot.press("escape")
        await _until(pilot, lambda: isinstance(app.screen, RegistryScreen), "back on the registry")
        await pilot.pause(0.2)
        assert json.loads((bd6 / "production.json").read_text())["run"] == "bd6.8d"
        assert not (bd6 / "registry.jsonl").exists()


async def test_forced_with_a_typed_reason_it_promotes_then_r_reverts(bd6: Path) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_registry_on(app, pilot, "bd6.8d2")
        await pilot.press("P")
        await _until(pilot, lambda: isinstance(app.screen, RegistryConfirmScreen), "confirmation shown")
        await pilot.press(*"r16 next", "enter")
        await _until(pilot, lambda: (bd6 / "registry.jsonl").exists(), "a registry line")
        [line] = [json.loads(text) for text in (bd6 / "registry.jsonl").read_text().splitlines()]
        assert (line["to_run"], line["reason"], line["gate"]["forced"]) == ("bd6.8d2", "r16 next", True)
        assert json.loads((bd6 / "production.json").read_text())["run"] == "bd6.8d2"
        await _until(pilot, lambda: screen.history_table.row_count == 1, "history shows the promote")
        assert "bd6.8d2" in str(screen.query_one("#registry-production").render())
        assert str(screen.history_table.get_row_at(0)[5]) == "FORCED"
        await pilot.press("1")  # the Runs table's star has moved
        runs = app.runs_screen.table
        await _until(pilot, lambda: str(runs.get_row_at(1)[0]) == "★ bd6.8d2", "Runs marks the new production")
        await pilot.press("5")

        await pilot.press("R")
        await _until(pilot, lambda: isinstance(app.screen, RegistryConfirmScreen), "revert confirmation shown")
        becomes = str(app.screen.query_one("#registry-becomes").render())
        assert "bd6.8d (runs/bd6.8d/merged)" in becomes
        await pilot.press("enter")  # the reason is optional for a revert
        await _until(pilot, lambda: screen.history_table.row_count == 2, "history shows the revert")
        assert json.loads((bd6 / "production.json").read_text())["run"] == "bd6.8d"
        assert str(screen.history_table.get_row_at(0)[2]) == "revert #1"  # newest first
        await pilot.press("R")  # nothing left to undo: a notification, no question
        await _until(pilot, lambda: any("nothing to revert" in n for n in _notes(app)), "told nothing to revert")
        assert isinstance(app.screen, RegistryScreen)
        await pilot.press("1")
        await _until(pilot, lambda: str(runs.get_row_at(0)[0]) == "★ bd6.8d", "Runs marks production again")


async def test_escape_cancels_a_promote_that_would_pass(tmp_path: Path) -> None:
    """A campaign without [gate]: the confirmation says so, takes an optional reason, and Escape changes nothing."""
    root = bd6_copy(tmp_path)
    toml = root / "campaign.toml"
    toml.write_text(toml.read_text().split("[gate]")[0])
    make_merged(root / "runs" / "bd6.8d2")
    app = tui_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await _open_registry_on(app, pilot, "bd6.8d2")
        await pilot.press("P")
        await _until(pilot, lambda: isinstance(app.screen, RegistryConfirmScreen), "confirmation shown")
        assert "no [gate]" in str(app.screen.query_one("#registry-gate").render())
        assert "runs/bd6.8d2/merged" in str(app.screen.query_one("#registry-becomes").render())
        await pilot.press("escape")
        await _until(pilot, lambda: any("promote cancelled" in n for n in _notes(app)), "told it was cancelled")
        assert not (root / "registry.jsonl").exists()
        await pilot.press("P")
        await _until(pilot, lambda: isinstance(app.screen, RegistryConfirmScreen), "confirmation shown again")
        await pilot.press("enter")
        await _until(pilot, lambda: (root / "registry.jsonl").exists(), "promoted without a reason")
        assert json.loads((root / "registry.jsonl").read_text())["gate"]["verdict"] == "no gate"
