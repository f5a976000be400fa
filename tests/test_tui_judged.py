"""Pilot tests of the Compare screen's judged panel against the real engine app in process.

Judged rows go in through the real CLI (``bench import --format judged``) into a real campaign;
the expected means are computed here from the lines imported, not read back from the engine, and
the assertions read the panel as it renders at the screen's width.
"""

from __future__ import annotations

import io
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.pilot import Pilot

from engine.store.campaign import Campaign
from tests.test_judge_import import NAMES, WEIGHTS, _import
from tests.test_tui_compare import open_compare, until
from tests.tui_fixtures import REPO, SIZE, add_run, bd6_copy, tui_app
from tui.app import TunedeckApp
from tui.screens.compare import CompareScreen
from tui.screens.pick_baseline import PRODUCTION, PickBaselineScreen
from tui.widgets.judged_deltas import JudgedDeltas, JudgedDeltasView

FULL = {"ground_truth": ("gt", 8, 7.8), "position_discrimination": ("pd", 6, 9.25), "verified_response": ("vr", 8, 8.0)}
PROBE = {k: v for k, v in FULL.items() if k != "position_discrimination"}  # the 14-prompt probe: no PD prompt
# (category, prompt) -> the overall of each evaluation, as imported
Scores = dict[tuple[str, str], list[float]]


def judged_lines(
    categories: dict[str, tuple[str, int, float]], *, repeats: int, jitter: float, seed: int, shift: float = 0.0
) -> tuple[list[dict[str, Any]], Scores]:
    """Foundry-style lines: each prompt scored around its own level (+ ``shift``), ``repeats`` times."""
    rng = random.Random(seed)
    lines, scores = [], {}
    for category, (prefix, count, score) in categories.items():
        for index in range(1, count + 1):
            prompt = f"{prefix}-{index:02d}"
            level = score + random.Random(prompt).uniform(-1.0, 1.0) + shift  # a prompt's level, the same each side
            values = [round(min(10.0, level + rng.uniform(-jitter, jitter)), 2) for _ in range(repeats)]
            scores[(category, prompt)] = values
            for repeat, value in enumerate(values):  # every criterion alike: the weighted overall is the value
                judge = {**dict.fromkeys(NAMES, value), "overall_score": value}
                lines.append({"prompt_id": prompt, "category": category, "repeat": repeat, "judge": judge})
    return lines, scores


def mean(scores: Scores, categories: set[str] | None = None) -> float:
    """The mean over prompts of each prompt's mean, in ``categories`` (all when None)."""
    per_prompt = [sum(v) / len(v) for (cat, _), v in scores.items() if categories is None or cat in categories]
    return sum(per_prompt) / len(per_prompt)


def judged_campaign(root: Path) -> Campaign:
    """A campaign with [judge] weights and two runs: ``base`` of 861 steps and ``cand`` of 300, neither logged."""
    created = Campaign.create(root, "judged")
    with open(created.root / "campaign.toml", "a", encoding="utf-8") as handle:
        handle.write(f"[judge]\n{WEIGHTS}\n")
    (root / "datasets").mkdir()
    (root / "datasets" / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    add_run(root, "base", max_steps=861, records=[])  # a ledger run: its length is its run.toml's
    add_run(root, "cand", max_steps=300, records=[])
    return Campaign.open(root)


def panel(screen: CompareScreen) -> JudgedDeltas:
    return screen.query_one("#judged-deltas", JudgedDeltas)


def panel_lines(screen: CompareScreen) -> list[str]:
    """The panel's lines as it draws them at its width (padding excluded)."""
    widget = panel(screen)
    width = widget.content_region.width
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert all(len(line) <= width for line in lines)
    return lines


def colours_of(screen: CompareScreen, words: str) -> set[str]:
    """The colours the panel draws ``words`` in (a colour per drawing of them)."""
    widget = panel(screen)
    console = Console(width=widget.content_region.width, file=io.StringIO(), color_system="truecolor")
    view = widget.content
    assert isinstance(view, JudgedDeltasView)
    segments = console.render(view, console.options)
    return {str(seg.style.color.name) for seg in segments if seg.text == words and seg.style and seg.style.color}


def row_of(lines: list[str], name: str) -> list[str]:
    """The cells of the table line that starts with ``name`` (its words split on spaces)."""
    found = [line.split() for line in lines if line.strip().startswith(name)]
    assert len(found) == 1, (name, lines)
    return found[0]


async def compare(app: TunedeckApp, pilot: Pilot[None], candidate: str, baseline: str) -> CompareScreen:
    """Compare ``candidate`` (a run or RUN@STEP) with ``baseline`` picked with ``a`` as a person would."""
    await until(pilot, lambda: app.runs_screen.is_mounted and app.runs_screen.table.row_count > 0, "runs listed")
    await pilot.press("3")
    screen = app.compare_screen
    screen.show_candidate(candidate)  # what the Runs screen's selection does, for a ref of a checkpoint
    await until(pilot, lambda: baseline in screen.refs, "refs listed")
    await pick_baseline(app, pilot, baseline)
    await until(pilot, lambda: f"{candidate} against {baseline} " in head(screen), f"{candidate} against {baseline}")
    return screen


async def pick_baseline(app: TunedeckApp, pilot: Pilot[None], baseline: str) -> None:
    await pilot.press("a")
    await until(pilot, lambda: isinstance(app.screen, PickBaselineScreen), "the picker")
    picker = app.screen
    assert isinstance(picker, PickBaselineScreen)
    choices = [PRODUCTION, *picker.refs]
    wanted = picker.current or PRODUCTION
    current = choices.index(wanted) if wanted in choices else 0  # where the picker's highlight starts
    steps = choices.index(baseline) - current
    await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps), "enter")


def head(screen: CompareScreen) -> str:
    return str(screen.query_one("#compare-head").render())


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
async def test_a_probe_without_position_prompts_is_named_not_a_phantom_regression(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    camp = judged_campaign(tmp_path / "judged")
    base_lines, base = judged_lines(FULL, repeats=3, jitter=1.5, seed=1)
    cand_lines, cand = judged_lines(PROBE, repeats=3, jitter=1.5, seed=2)
    _import(camp, base_lines, "base@300")
    _import(camp, cand_lines, "cand@300")
    app = tui_app(camp.root)
    async with app.run_test(size=size) as pilot:
        screen = await compare(app, pilot, "cand@300", "base@300")
        await until(pilot, lambda: panel(screen).display, "the judged panel")
        lines = panel_lines(screen)
        header = lines[0].split()
        # 80 columns: short headers, so no name wraps; wide: the words the bench totals use.
        sides = ["base", "cand"] if size[0] < 100 else ["baseline", "candidate"]
        assert header[:4] == ["judged", *sides, "delta"]
        shared = set(PROBE)
        overall = row_of(lines, "probe (shared categories)")
        # Over the shared categories only: position_discrimination is not a 0 on the candidate's side.
        assert float(overall[3]) == pytest.approx(mean(base, shared), abs=0.006)
        assert float(overall[4]) == pytest.approx(mean(cand, shared), abs=0.006)
        assert float(overall[5]) == pytest.approx(mean(cand, shared) - mean(base, shared), abs=0.011)
        assert overall[6].startswith("[")
        assert " ".join(overall[-3:]) == "inside the noise"
        low, high = (float(x.strip("[],")) for x in overall[6:8])
        assert low < float(overall[5]) < high
        for category in sorted(shared):
            cells = row_of(lines, category)
            assert float(cells[1]) == pytest.approx(mean(base, {category}), abs=0.006)
            assert float(cells[2]) == pytest.approx(mean(cand, {category}), abs=0.006)
            assert cells[4].startswith("[")
            assert cells[5].endswith("]")
            assert " ".join(cells[-3:]) == "inside the noise"
        assert not [line for line in lines if line.strip().startswith("position_discrimination")]
        text = " ".join(" ".join(lines).split())
        assert (
            "! probe: cand@300 has no rows in position_discrimination (base@300 has): "
            "left out of the delta, not counted as 0"
        ) in text
        assert "unequal step counts" not in text  # 300 against 300
        assert colours_of(screen, "inside the noise") == {"yellow"}
        # No totals (production: none yet): the panel goes, rather than show the last diff.
        await pick_baseline(app, pilot, PRODUCTION)
        await until(pilot, lambda: "no run is in production yet" in head(screen), "no production")
        await until(pilot, lambda: not panel(screen).display, "the panel hidden")


async def test_a_clear_gain_is_outside_the_noise(tmp_path: Path) -> None:
    camp = judged_campaign(tmp_path / "judged")
    levels = {
        "ground_truth": ("gt", 8, 6.0),
        "position_discrimination": ("pd", 6, 6.5),
        "verified_response": ("vr", 8, 6.0),
    }
    base_lines, base = judged_lines(levels, repeats=3, jitter=0.2, seed=1)
    cand_lines, cand = judged_lines(levels, repeats=3, jitter=0.2, seed=2, shift=2.0)  # +2 on every prompt
    _import(camp, base_lines, "base@300")
    _import(camp, cand_lines, "cand")  # the run itself: 300 steps by its run.toml
    app = tui_app(camp.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.runs_screen.is_mounted and app.runs_screen.table.row_count == 2, "runs")
        await pilot.press("down")  # cand, selected on Runs as a person would
        await pilot.press("3")
        screen = app.compare_screen
        await until(pilot, lambda: "base@300" in screen.refs, "refs listed")
        await pick_baseline(app, pilot, "base@300")
        await until(pilot, lambda: "cand against base@300 " in head(screen) and panel(screen).display, "the panel")
        lines = panel_lines(screen)
        for name, categories in (("probe (shared categories)", None), *((c, {c}) for c in levels)):
            cells = row_of(lines, name)
            assert " ".join(cells[-3:]) == "outside the noise", name
            assert cells[-6].startswith("+")
            assert float(cells[-6]) == pytest.approx(mean(cand, categories) - mean(base, categories), abs=0.011)
            assert float(cells[-6]) == pytest.approx(2.0, abs=0.15)
            assert float(cells[-5].strip("[,")) > 0  # the whole interval above 0
        text = " ".join(lines)
        assert "!" not in text  # the same categories, the same steps: nothing to warn of
        assert colours_of(screen, "outside the noise") == {"green"}
        # The other way round, the fall is red.
        screen.show_candidate("base@300")
        await pick_baseline(app, pilot, "cand")
        await until(pilot, lambda: "base@300 against cand " in head(screen), "base@300 against cand")
        await until(pilot, lambda: row_of(panel_lines(screen), "probe")[5].startswith("-"), "the fall")
        assert colours_of(screen, "outside the noise") == {"red"}
        assert float(row_of(panel_lines(screen), "probe")[5]) == pytest.approx(mean(base) - mean(cand), abs=0.011)


async def test_a_probe_against_the_full_length_baseline_names_the_matching_ref(tmp_path: Path) -> None:
    camp = judged_campaign(tmp_path / "judged")
    for ref, seed in (("base@300", 1), ("base", 3), ("cand@300", 2)):
        _import(camp, judged_lines(FULL, repeats=3, jitter=1.5, seed=seed)[0], ref)
    app = tui_app(camp.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await compare(app, pilot, "cand@300", "base")
        await until(pilot, lambda: panel(screen).display, "the judged panel")
        text = " ".join(" ".join(panel_lines(screen)).split())
        assert (
            "! unequal step counts: cand@300 at step 300, base at step 861; base@300 is the baseline at the same step"
        ) in text
        assert "has no rows in" not in text  # both cover every category
        await pick_baseline(app, pilot, "base@300")
        await until(pilot, lambda: "cand@300 against base@300 " in head(screen), "the probe baseline")
        await until(pilot, lambda: "unequal" not in " ".join(panel_lines(screen)), "the note gone")
        assert panel(screen).display


async def test_a_campaign_without_judged_benches_looks_as_before(tmp_path: Path) -> None:
    root = tmp_path / "bd6"
    shutil.copytree(REPO / "sessions" / "bd6", root, ignore=shutil.ignore_patterns(".tunedeck"))
    app = tui_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_compare(app, pilot, "bd6.8d2")
        assert "bd6.8d2 against bd6.8d (production)" in head(screen)
        assert not panel(screen).display  # pass/fail benches only, steps unknown (imported ledger runs)
        assert panel(screen).region.height == 0


async def test_unequal_steps_without_judged_benches_is_the_note_alone(tmp_path: Path) -> None:
    root = bd6_copy(tmp_path)  # bd6.8d logged 200 steps, bd6.8d2 600
    app = tui_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_compare(app, pilot, "bd6.8d2")
        await until(pilot, lambda: panel(screen).display, "the panel")
        assert panel_lines(screen) == ["! unequal step counts: bd6.8d2 at step 600, bd6.8d at step 200"]


async def test_p_picks_a_checkpoint_as_the_candidate_and_it_stays(tmp_path: Path) -> None:
    """Probe against probe from the keyboard: `p` cand@300, `a` base@300; back on Runs and 3 again, still cand@300."""
    camp = judged_campaign(tmp_path / "judged")
    for ref, seed in (("base@300", 1), ("cand@300", 2)):
        _import(camp, judged_lines(FULL, repeats=3, jitter=1.5, seed=seed)[0], ref)
    app = tui_app(camp.root)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.runs_screen.is_mounted and app.runs_screen.table.row_count > 0, "runs listed")
        table = app.runs_screen.table
        names = [str(table.get_row_at(i)[0]).strip(" ★") for i in range(table.row_count)]
        table.move_cursor(row=names.index("cand"))
        await pilot.press("3")
        screen = app.compare_screen
        await until(pilot, lambda: "cand:" in head(screen), "cand has no results of its own")
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PickBaselineScreen), "the candidate picker")
        picker = app.screen
        assert isinstance(picker, PickBaselineScreen)
        assert picker.refs == ["base@300", "cand@300"]  # no "production" among candidates
        await pilot.press("down", "enter")
        await until(pilot, lambda: screen.candidate == "cand@300", "cand@300 picked")
        await until(pilot, lambda: "base@300" in screen.refs, "refs listed")
        await pick_baseline(app, pilot, "base@300")
        await until(pilot, lambda: "cand@300 against base@300 " in head(screen), "probe against probe")
        await until(pilot, lambda: panel(screen).display, "the judged panel")
        await pilot.press("1")
        await pilot.press("3")
        await until(pilot, lambda: "cand@300 against base@300 " in head(screen), "still the checkpoint")
