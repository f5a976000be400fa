"""Pilot tests of the Compare screen (key 3) against the real engine app in process, on real bench files.

The expected verdicts are computed here from the bench JSONL files themselves (first sample of
each task), not read back from the engine, so a wrong query or a wrong cell fails the test.
"""

from __future__ import annotations

import io
import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import Static

from tests.tui_fixtures import SIZE, add_run, bd6_copy, metric_records, tui_app, write_jsonl
from tui.app import TunedeckApp
from tui.messages import RunEvent
from tui.screens.compare import PAGE, CompareScreen
from tui.screens.pick_baseline import PickBaselineScreen

BIG = 20_000


@pytest.fixture
def bd6(tmp_path: Path) -> Path:
    return bd6_copy(tmp_path)


def first_sample_verdicts(root: Path, run: str) -> dict[str, bool]:
    """task id -> passed on its lowest sample, in any bench (the gate's rule for anchors)."""
    best: dict[tuple[str, str], tuple[int, bool]] = {}
    for path in sorted((root / "bench" / run).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            key = (row["bench"], row["task_id"])
            if key not in best or row["sample"] < best[key][0]:
                best[key] = (row["sample"], row["passed"])
    verdicts: dict[str, bool] = {}
    for (_, task), (_, passed) in best.items():
        verdicts[task] = verdicts.get(task, False) or passed
    return verdicts


async def until(pilot: Pilot[None], done: Callable[[], bool], what: str) -> None:
    for _ in range(100):
        if done():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"never happened: {what}")


def text_of(screen: CompareScreen, selector: str) -> str:
    """What a Static or Label shows, as plain text (Rich tables included), whitespace collapsed."""
    widget = screen.query_one(selector, Static)
    console = Console(width=max(widget.size.width, 40), record=True, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    return " ".join(console.export_text().split())  # wrapped lines joined again


def row_keys(screen: CompareScreen) -> list[str]:
    table = screen.rows_table
    return [str(table.coordinate_to_cell_key(Coordinate(i, 0)).row_key.value) for i in range(table.row_count)]


def count_line(screen: CompareScreen) -> str:
    return text_of(screen, "#rows-count")


async def open_compare(app: TunedeckApp, pilot: Pilot[None], run: str) -> CompareScreen:
    """Select ``run`` on the Runs screen, press 3, wait for rows and matrix."""
    await until(pilot, lambda: app.runs_screen.is_mounted and app.runs_screen.table.row_count > 0, "runs listed")
    table = app.runs_screen.table
    names = [str(table.get_row_at(i)[0]).strip(" ★") for i in range(table.row_count)]
    table.move_cursor(row=names.index(run))
    await pilot.press("3")
    screen = app.compare_screen
    assert isinstance(app.screen, CompareScreen)
    loaded = lambda: bool(count_line(screen)) and text_of(screen, "#anchor-title") != "anchor matrix"  # noqa: E731
    await until(pilot, loaded, "rows and matrix")
    return screen


async def test_bd6_8d2_against_production_lost_rows_gate_and_anchor_matrix(bd6: Path) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_compare(app, pilot, "bd6.8d2")
        assert "bd6.8d2 against bd6.8d (production)" in text_of(screen, "#compare-head")
        # LOST first: the two rows the seed names, and only those.
        assert screen.klass == "lost"
        assert sorted(row_keys(screen)) == ["humaneval:HumanEval/23", "mbpp:MBPP/53"]
        assert count_line(screen).startswith("rows 1-2 of 2")
        # The gate: failed, with the failing anchors named.
        gate = screen.query_one("#gate-verdict")
        assert gate.has_class("-failed")
        verdict = text_of(screen, "#gate-verdict")
        assert "GATE FAILED" in verdict
        assert "anchors 13/19: failed MBPP/53, HumanEval/23, HumanEval/27, HumanEval/34, HumanEval/45" in verdict
        # Totals: both benches, signed deltas, the exact p-value in words.
        totals = text_of(screen, "#bench-totals")
        assert "12/13 92.3%" in totals
        assert "-7.7 pts" in totals
        assert "-16.7 pts" in totals
        assert "p=0.5: could well be noise (2 lost vs 0 gained" in totals
        assert "2 flaky" in totals
        # The matrix: every run with bench results across, each cell as the files say.
        matrix = screen.matrix
        assert matrix.matrix is not None
        assert matrix.matrix.runs == ["bd6", "bd6.5", "bd6.8d", "bd6.8d2"]
        anchors = tomllib.loads((bd6 / "campaign.toml").read_text())["gate"]["anchors"]
        assert matrix.matrix.rows == anchors
        for run in ("bd6.5", "bd6.8d", "bd6.8d2"):
            verdicts = first_sample_verdicts(bd6, run)
            assert [matrix.cell(anchor, run) for anchor in anchors] == [verdicts.get(a) for a in anchors], run
        assert matrix.cell("MBPP/53", "bd6.8d") is True
        assert matrix.cell("MBPP/53", "bd6.8d2") is False
        headers = [str(column.label) for column in matrix.columns.values()]
        assert headers == ["row", "bd6", "bd6.5", "★bd6.8d", "▸bd6.8d2"]
        totals_row = [str(cell) for cell in matrix.get_row("__passed__")]
        assert totals_row == ["passed", "19/19", "15/19", "15/19", "13/19"]  # the seed's headline numbers


async def test_filters_by_class_bench_and_text_flaky_rows_marked(bd6: Path) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_compare(app, pilot, "bd6.8d2")

        async def rows_after(*keys: str) -> list[str]:
            before = count_line(screen)
            screen.query_one("#rows-count", Static).update("")
            await pilot.press(*keys)
            await until(pilot, lambda: bool(count_line(screen)), f"rows after {keys} (was {before})")
            return row_keys(screen)

        assert await rows_after("c") == []  # GAINED: none
        assert "no GAINED rows against bd6.8d" in count_line(screen)
        still = await rows_after("c")
        assert [k.split(":")[1] for k in still] == ["HumanEval/27", "HumanEval/34", "HumanEval/45", "HumanEval/85"]
        noise = [str(screen.rows_table.get_row(key)[5]) for key in still]
        assert noise == ["", "~ flaky", "~ flaky", ""]  # the seed's decoder-noise rows, named
        assert len(await rows_after("c")) == 13  # KEPT
        assert len(await rows_after("c")) == 19  # all classes
        humaneval = await rows_after("b")
        assert len(humaneval) == 6
        assert all(k.startswith("humaneval:") for k in humaneval)
        assert "bench humaneval" in text_of(screen, "#rows-filter")
        assert len(await rows_after("b", "b")) == 19  # mbpp, then all benches again
        await pilot.press("slash")
        assert screen.query_one("#rows-search").has_focus
        # Typed fast: each keystroke cancels the request of the one before; the last one answers.
        found = await rows_after(*"al/2")
        assert found == ["humaneval:HumanEval/23", "humaneval:HumanEval/27"]
        await pilot.press("enter")  # closes the search box; the filter stays
        assert not screen.query_one("#rows-search").display
        assert row_keys(screen) == found
        assert screen.rows_table.has_focus
        assert await rows_after("o") == found  # sort by task id: same two rows
        assert 'text "al/2"' in text_of(screen, "#rows-filter")


async def test_baseline_is_picked_from_runs_with_results_and_back_to_production(bd6: Path) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_compare(app, pilot, "bd6.8d2")
        await until(pilot, lambda: bool(screen.refs), "refs listed")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, PickBaselineScreen), "the picker")
        picker = app.screen
        assert isinstance(picker, PickBaselineScreen)
        assert picker.refs == ["bd6", "bd6.5", "bd6.8d"]  # the candidate itself is not offered
        await pilot.press("down", "enter")  # production is first; bd6 (BD6 pass-1) next
        await until(pilot, lambda: "against bd6 " in text_of(screen, "#compare-head"), "baseline bd6")
        await until(pilot, lambda: count_line(screen).startswith("rows 1-6 of 6"), "six lost rows")
        expected = first_sample_verdicts(bd6, "bd6.8d2")
        assert sorted(k.split(":")[1] for k in row_keys(screen)) == sorted(t for t, ok in expected.items() if not ok)
        assert "◂bd6" in [str(c.label) for c in screen.matrix.columns.values()]
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, PickBaselineScreen), "the picker again")
        await pilot.press("up", "enter")
        await until(pilot, lambda: "(production)" in text_of(screen, "#compare-head"), "production again")
        await until(pilot, lambda: count_line(screen).startswith("rows 1-2 of 2"), "two lost rows again")


async def test_a_bench_event_brings_new_results(bd6: Path) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_compare(app, pilot, "bd6.8d2")
        mbpp = bd6 / "bench" / "bd6.8d2" / "mbpp.jsonl"
        rows = [json.loads(line) for line in mbpp.read_text().splitlines()]
        for row in rows:
            if row["task_id"] == "MBPP/53":
                row.update(passed=True, error=None)
        write_jsonl(mbpp, rows)  # as `tunedeck bench run` leaves it, with its "bench" event
        app.post_message(RunEvent("bd6.8d2", {"event": "bench", "ref": "bd6.8d2"}))
        await until(pilot, lambda: row_keys(screen) == ["humaneval:HumanEval/23"], "MBPP/53 no longer lost")
        await until(pilot, lambda: screen.matrix.cell("MBPP/53", "bd6.8d2") is True, "the matrix redrawn")


def big_campaign(root: Path, *, production: bool = True, gate: bool = True) -> Path:
    """Two runs with BIG rows each on one bench: ``cand`` loses every 15th row ``base`` passes."""
    (root / "datasets").mkdir(parents=True)
    (root / "datasets" / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    toml = 'name = "big"\n' + ('[gate]\nanchors = ["T/0", "T/1", "T/2"]\nmax_lost = 0\n' if gate else "")
    (root / "campaign.toml").write_text(toml)
    for run, fails in (("base", lambda i: i % 3 == 0), ("cand", lambda i: i % 5 == 0)):
        add_run(root, run, max_steps=10, records=metric_records(10))
        write_jsonl(
            root / "bench" / run / "code.jsonl",
            (
                {"run": run, "bench": "code", "task_id": f"T/{i}", "passed": not fails(i),
                 "error": "AssertionError" if fails(i) else None, "score": None, "scores": None,
                 "sample": 0, "latency_ms": None}
                for i in range(BIG)
            ),
        )  # fmt: skip
    if production:
        pointer = {"run": "base", "artifact": "runs/base/merged", "promoted_at": "2026-01-01T00:00:00Z"}
        (root / "production.json").write_text(json.dumps(pointer))
    return root


async def test_a_large_diff_opens_on_its_first_page_only(tmp_path: Path) -> None:
    root = big_campaign(tmp_path / "big")
    lost = sum(1 for i in range(BIG) if i % 5 == 0 and i % 3 != 0)
    app = tui_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_compare(app, pilot, "cand")
        assert screen.rows_table.row_count == PAGE  # one page in the table, never the whole diff
        assert count_line(screen).startswith(f"rows 1-{PAGE} of {lost:,}")
        assert row_keys(screen)[:3] == ["code:T/5", "code:T/10", "code:T/20"]
        await pilot.press("n")
        await until(pilot, lambda: count_line(screen).startswith(f"rows {PAGE + 1}-{2 * PAGE} of"), "page 2")
        assert screen.rows_table.row_count == PAGE
        await pilot.press("N")
        await until(pilot, lambda: count_line(screen).startswith(f"rows 1-{PAGE} of"), "page 1 again")
        assert "very unlikely to be noise" in text_of(screen, "#bench-totals")


async def test_failures_are_lines_a_person_can_act_on(tmp_path: Path) -> None:
    root = big_campaign(tmp_path / "big", production=False, gate=False)
    add_run(root, "fresh", max_steps=10, records=metric_records(10))  # never benched
    app = tui_app(root)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_compare(app, pilot, "cand")
        head = text_of(screen, "#compare-head")
        assert "no run is in production yet" in head
        assert "a: pick another baseline" in head
        assert "no gate: declare [gate]" in text_of(screen, "#gate-verdict")
        assert screen.query_one("#gate-verdict").has_class("-none")  # borderless: one line
        await until(pilot, lambda: "no [gate] anchors" in text_of(screen, "#anchor-title"), "no-anchors line")
        # With a baseline picked, the rows come; `m` pins a row into the matrix.
        await until(pilot, lambda: bool(screen.refs), "refs listed")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, PickBaselineScreen), "the picker")
        await pilot.press("down", "enter")
        await until(pilot, lambda: count_line(screen).startswith("rows 1-50 of"), "rows against base")
        await pilot.press("m")
        pinned = lambda: screen.matrix.matrix is not None and screen.matrix.matrix.rows == ["code:T/5"]  # noqa: E731
        await until(pilot, pinned, "the pinned row in the matrix")
        assert screen.matrix.cell("code:T/5", "base") is True
        assert screen.matrix.cell("code:T/5", "cand") is False
        # A run without bench results says so.
        await pilot.press("1")
        table = app.runs_screen.table
        table.move_cursor(row=[str(table.get_row_at(i)[0]).strip() for i in range(table.row_count)].index("fresh"))
        await pilot.press("3")
        await until(pilot, lambda: "no bench results for 'fresh'" in text_of(screen, "#compare-head"), "no results")
        assert "no rows" in count_line(screen)


async def test_engine_gone_is_a_line_not_a_traceback(bd6: Path, tmp_path: Path) -> None:
    app = tui_app(bd6)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_compare(app, pilot, "bd6.8d2")
        # The engine goes away: the client now talks to a socket nobody listens on.
        gone = httpx.AsyncHTTPTransport(uds=str(tmp_path / "nobody.sock"))
        app.client.http = httpx.AsyncClient(transport=gone, base_url="http://engine")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "cannot reach the engine" in text_of(screen, "#compare-head"), "failure line")
        assert "cannot reach the engine" in text_of(screen, "#gate-verdict")
        await pilot.press("c")
        await until(pilot, lambda: count_line(screen).startswith("rows not loaded: cannot reach"), "rows line")
        assert isinstance(app.screen, CompareScreen)
