"""The Compare screen (key 3): the selected run against production (or any run), row by row.

The candidate is the run selected on Runs (``app.selected_run()``); the baseline is production
until ``a`` picks another. Totals come without rows (``/bench/totals``), the rows one page at a
time from ``/bench/rows`` — filters and sorting run in DuckDB and the table never holds more than
a page (a DataTable takes 0.9 s to paint 10k rows) — the verdict from ``/bench/gate/{run}`` and the
anchor matrix from ``/bench/anchors``. Each request runs in an exclusive worker, so a keystroke
in the text filter cancels the request of the one before, and an answer to a question no
longer asked is dropped: the newest answer wins.
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Label

from engine.api import BenchRowsPage, DiffTotals
from tui.client import EndpointMissing, EngineCallError, EngineClient
from tui.screens.pick_baseline import PRODUCTION, PickBaselineScreen
from tui.widgets.anchor_matrix import AnchorMatrixTable
from tui.widgets.bench_totals import BenchTotals
from tui.widgets.diff_rows import CLASS_LABELS, DiffRows
from tui.widgets.gate_verdict import GateVerdict
from tui.widgets.judged_deltas import JudgedDeltas
from tui.widgets.status_line import StatusLine

# The events a run's stream carries when it has new bench results (bench run, bench judge, bench import).
BENCH_EVENTS = frozenset({"bench", "bench_judge", "bench_import"})
# How the engine's gate answer says the campaign declares none (engine.bench.gate.gate_config).
NO_GATE = "no [gate] section"

PAGE = 50
# `c` walks the classes in the order a person reads a diff: what broke first.
CLASS_CYCLE: tuple[str | None, ...] = ("lost", "gained", "still_failing", "kept", None)
SORTS = ("bench", "task_id", "klass")
TYPING_PAUSE_S = 0.15  # the next keystroke within this cancels the request before it is sent
NARROW = 110  # columns below which the rows and the anchor matrix stack instead of sitting side by side
LEGEND = "★ production ▸ candidate ◂ baseline  ✓ pass ✗ fail · not run"


def class_name(klass: str | None) -> str:
    """``LOST``, ``STILL FAILING``; ``all`` for no class filter."""
    return CLASS_LABELS[klass][0] if klass else "all"


class CompareScreen(Screen[None]):
    """Bench totals, the gate, one page of diff rows and the anchor matrix of one candidate."""

    BINDINGS = [
        Binding("a", "pick_baseline", "Baseline"),
        Binding("p", "pick_candidate", "Candidate"),
        Binding("c", "next_class", "Class"),
        Binding("b", "next_bench", "Bench"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("n", "page(1)", "Next page"),
        Binding("N", "page(-1)", "Previous page", key_display="N"),
        Binding("o", "next_sort", "Sort"),
        Binding("m", "pin_row", "Pin to matrix"),
        Binding("ctrl+r", "refresh", "Refresh"),
        Binding("escape", "close_search", "Close search", show=False),
    ]

    def __init__(self, client: EngineClient) -> None:
        super().__init__(id="compare")
        self.client = client
        self.candidate: str | None = None
        self.baseline: str | None = None  # None: production
        self.production: str | None = None  # as the engine last named it
        self.klass: str | None = "lost"
        self.class_chosen = False  # until `c` is pressed, a candidate opens on its LOST rows (or all when none)
        self.bench: str | None = None
        self.text = ""
        self.sort = "bench"
        self.row_offset = 0
        self.total = 0
        self.benches: list[str] = []
        self.refs: list[str] = []  # refs with bench results: the baselines on offer
        self.anchor_rows: list[str] | None = None  # the gate's anchors, from the first matrix answer
        self.pinned: list[str] = []  # diff rows added to the matrix with `m`
        self.stale = False  # a bench event arrived while the screen was hidden
        self._ready = False

    def compose(self) -> ComposeResult:
        yield StatusLine()
        yield Label("", id="compare-head")
        yield GateVerdict(id="gate-verdict")
        yield BenchTotals(id="bench-totals")
        yield JudgedDeltas(id="judged-deltas")
        with Horizontal(id="compare-body"):
            with Vertical(id="rows-pane"):
                yield Label("", id="rows-filter")
                yield DiffRows(id="diff-rows")
                yield Input(placeholder="task id or error contains… (enter: done)", id="rows-search")
                yield Label("", id="rows-count")
            with Vertical(id="anchor-pane"):
                yield Label("anchor matrix", id="anchor-title")
                yield AnchorMatrixTable(id="anchor-matrix")
                yield Label(LEGEND, id="anchor-legend")
        yield Footer()

    def on_mount(self) -> None:
        self._ready = True
        self.query_one("#rows-search", Input).display = False
        self.reload()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW, "-narrow")

    @property
    def rows_table(self) -> DiffRows:
        """The page of diff rows."""
        return self.query_one(DiffRows)

    @property
    def matrix(self) -> AnchorMatrixTable:
        """The anchor matrix."""
        return self.query_one(AnchorMatrixTable)

    # -- what is compared ------------------------------------------------------------------
    def show_candidate(self, run: str | None) -> None:
        """Compare ``run`` (the app's selected run); reloads when it changed or bench results arrived.

        A checkpoint of that run picked here with ``p`` (``RUN@300``) stays the candidate.
        """
        if run is not None and self.candidate is not None and self.candidate.split("@", 1)[0] == run:
            run = self.candidate
        changed = run != self.candidate
        if changed:
            self.candidate, self.row_offset = run, 0
            self.klass, self.class_chosen = "lost", False
        if self._ready and (changed or self.stale):
            self.reload()

    def feed_event(self, run: str, record: dict[str, object]) -> None:
        """A run's lifecycle line: ``bench``, ``bench_judge`` or ``bench_import`` means new results: all asked again."""
        if record.get("event") not in BENCH_EVENTS:
            return
        self.stale = True
        if self._ready and self.is_current:
            self.reload()

    def reload(self) -> None:
        """Ask the engine for everything the screen shows."""
        self.stale = False
        if self.candidate is None:
            self._head("no run selected: pick one on Runs (1), then press 3")
            self.query_one(GateVerdict).show_message("no candidate")
            self.query_one(BenchTotals).show_message("no candidate")
            self.query_one(JudgedDeltas).clear()
            self.load_matrix()
        else:
            self.load_overview(self.candidate, self.baseline)  # then the matrix, production known

    def action_refresh(self) -> None:
        """Ask again for totals, gate, rows and matrix."""
        self.reload()

    def _line(self, selector: str, text: str) -> None:
        """A line of plain text: engine messages and typed filters hold brackets that are not markup."""
        self.query_one(selector, Label).update(Text(text))

    def _head(self, text: str) -> None:
        self._line("#compare-head", text)

    # -- totals, gate, baselines -----------------------------------------------------------
    @work(exclusive=True, group="compare-overview")
    async def load_overview(self, candidate: str, baseline: str | None) -> None:
        """Totals (then the first page of rows), the gate, and the refs a baseline can be."""
        if await self._load_totals(candidate, baseline):
            self.load_rows()
        else:
            self.rows_table.show([])
            self.total = 0
            self._line("#rows-count", "no rows: see above")
        await self._load_gate(candidate)
        await self._load_refs()
        self.load_matrix()

    async def _load_refs(self) -> None:
        """The refs with bench results: what `a` and `p` offer."""
        try:
            show = await self.client.bench_show()
            self.refs = list(dict.fromkeys(rate.run for rate in show.pass_rates))
        except EngineCallError:
            pass  # `a` and `p` say so when pressed

    async def _totals(self, candidate: str, baseline: str | None) -> DiffTotals:
        try:
            return await self.client.bench_totals(candidate, baseline)
        except EndpointMissing:  # an older engine: the whole diff, rows and all
            diff = await self.client.bench_diff(candidate, baseline)
            fields = ("candidate", "baseline", "baseline_is_production", "p_value", "benches", "judged", "steps")
            return DiffTotals(**{name: getattr(diff, name) for name in fields})

    async def _load_totals(self, candidate: str, baseline: str | None) -> bool:
        totals_view = self.query_one(BenchTotals)
        try:
            totals = await self._totals(candidate, baseline)
        except EngineCallError as exc:
            hint = "  (a: pick another baseline)" if "production" in str(exc) else ""
            self._head(f"{candidate}: {exc}{hint}")
            totals_view.show_message(f"no totals for {candidate}")
            self.query_one(JudgedDeltas).clear()
            return False
        if totals.baseline_is_production:
            self.production = totals.baseline
        against = "production" if totals.baseline_is_production else "a: back to production"
        self._head(f"{candidate} against {totals.baseline} ({against})   a: pick the baseline")
        totals_view.show(totals)
        self.query_one(JudgedDeltas).show(totals)
        self.benches = sorted(totals.benches)
        if self.bench not in self.benches:
            self.bench = None
        if not self.class_chosen:
            self.klass = "lost" if any(t.lost for t in totals.benches.values()) else None
        return True

    async def _load_gate(self, candidate: str) -> None:
        verdict = self.query_one(GateVerdict)
        try:
            gate = await self.client.gate(candidate)
        except EngineCallError as exc:
            if NO_GATE in str(exc):
                verdict.show_no_gate()
            else:
                verdict.show_message(str(exc))
            return
        self.production = gate.production or self.production
        verdict.show(gate)

    # -- rows ------------------------------------------------------------------------------
    def _params(self) -> dict[str, str | int]:
        params: dict[str, str | int] = {"offset": self.row_offset, "limit": PAGE, "sort": self.sort}
        for name, value in (("against", self.baseline), ("klass", self.klass), ("bench", self.bench)):
            if value:
                params[name] = value
        if self.text:
            params["q"] = self.text
        return params

    @work(exclusive=True, group="compare-rows")
    async def load_rows(self, pause: float = 0.0) -> None:
        """One page of rows for the filters as they are now (``pause``: let typing settle first)."""
        if pause:
            await asyncio.sleep(pause)
        candidate, params = self.candidate, self._params()
        if candidate is None:
            return
        self._show_filter()
        try:
            page = await self.client.bench_rows(candidate, **params)
        except EngineCallError as exc:
            self.rows_table.show([])
            self._line("#rows-count", f"rows not loaded: {exc}")
            return
        if (candidate, params) != (self.candidate, self._params()):
            return  # the filters moved on while this was asked: a newer request is on its way
        if not page.rows and page.total and self.row_offset:
            self.row_offset = (page.total - 1) // PAGE * PAGE  # fewer rows than before: the last page
            self.load_rows()
            return
        self.total = page.total
        self.rows_table.show(page.rows)
        self._line("#rows-count", self._count_text(page))

    def _count_text(self, page: BenchRowsPage) -> str:
        if not page.total:
            what = f"no {class_name(self.klass)} rows" if self.klass else "no rows"
            where = f" in {self.bench}" if self.bench else ""
            match = f' matching "{self.text}"' if self.text else ""
            return f"{what}{where}{match} against {page.baseline}   (c: another class)"
        last = page.offset + len(page.rows)
        pages = "   n/N: next/previous page" if page.total > PAGE else ""
        return f"rows {page.offset + 1:,}-{last:,} of {page.total:,}{pages}"

    def _show_filter(self) -> None:
        bench = self.bench or "all"
        text = f'"{self.text}"' if self.text else "—"
        line = f"class {class_name(self.klass)} (c)  bench {bench} (b)  text {text} (/)  sort {self.sort} (o)"
        self._line("#rows-filter", line)

    def _filters_changed(self, pause: float = 0.0) -> None:
        self.row_offset = 0
        self.load_rows(pause)

    def action_next_class(self) -> None:
        """The next class: LOST, GAINED, STILL FAILING, KEPT, all."""
        self.klass = CLASS_CYCLE[(CLASS_CYCLE.index(self.klass) + 1) % len(CLASS_CYCLE)]
        self.class_chosen = True
        self._filters_changed()

    def action_next_bench(self) -> None:
        """The next bench of the diff, then all benches."""
        choices: list[str | None] = [None, *self.benches]
        self.bench = choices[(choices.index(self.bench) + 1) % len(choices)] if self.bench in choices else None
        self._filters_changed()

    def action_next_sort(self) -> None:
        """Sort by bench, by task id, or by class."""
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self._filters_changed()

    def action_page(self, direction: int) -> None:
        """The next (1) or previous (-1) page of rows."""
        offset = self.row_offset + direction * PAGE
        if not 0 <= offset < max(self.total, 1):
            self.notify("no next page" if direction > 0 else "already on the first page", timeout=2)
            return
        self.row_offset = offset
        self.load_rows()

    def action_search(self) -> None:
        """Filter the rows by text: a case-insensitive part of the task id or the error."""
        search = self.query_one("#rows-search", Input)
        search.display = True
        search.focus()

    def action_close_search(self) -> None:
        """Close the text filter (its text stays applied; empty it to drop it)."""
        search = self.query_one("#rows-search", Input)
        if search.display:
            search.display = False
            self.rows_table.focus()

    @on(Input.Changed, "#rows-search")
    def _search_changed(self, event: Input.Changed) -> None:
        text = event.value.strip()
        if text != self.text:
            self.text = text
            self._filters_changed(TYPING_PAUSE_S)

    @on(Input.Submitted, "#rows-search")
    def _search_done(self) -> None:
        self.action_close_search()

    # -- baseline --------------------------------------------------------------------------
    def action_pick_baseline(self) -> None:
        """Compare against another run with bench results, or production again."""
        if self.candidate is None:
            self.notify("no run selected: pick one on Runs (1)", severity="warning")
            return
        if not self.refs:
            self.notify("the engine listed no runs with bench results (ctrl+r to ask again)", severity="warning")
            return
        refs = [ref for ref in self.refs if ref != self.candidate]
        picker = PickBaselineScreen(refs, production=self.production, current=self.baseline)
        self.app.push_screen(picker, self._baseline_picked)

    async def action_pick_candidate(self) -> None:
        """Compare another run or checkpoint (``RUN@300`` against ``BASE@300``: probe against probe)."""
        if not self.refs:
            await self._load_refs()
        if not self.refs:
            self.notify("the engine listed no runs with bench results (ctrl+r to ask again)", severity="warning")
            return
        prompt = "Candidate: a run or a checkpoint with bench results (enter picks, escape keeps it):"
        picker = PickBaselineScreen(
            self.refs, production=self.production, current=self.candidate, prompt=prompt, offer_production=False
        )
        self.app.push_screen(picker, self._candidate_picked)

    def _candidate_picked(self, choice: str | None) -> None:
        if choice is not None and choice != self.candidate:
            if choice == self.baseline:
                self.baseline = None  # a ref against itself says nothing: back to production
            self.show_candidate(choice)

    def _baseline_picked(self, choice: str | None) -> None:
        if choice is None:
            return
        baseline = None if choice == PRODUCTION else choice
        if baseline != self.baseline:
            self.baseline, self.row_offset = baseline, 0
            self.reload()

    # -- anchor matrix ---------------------------------------------------------------------
    def action_pin_row(self) -> None:
        """Add the diff row under the cursor to the anchor matrix (again: take it out)."""
        key = self.rows_table.selected_row
        if key is None:
            self.notify("no row under the cursor", severity="warning")
            return
        if key in self.pinned:
            self.pinned.remove(key)
        else:
            self.pinned.append(key)
        self.load_matrix()

    @work(exclusive=True, group="compare-matrix")
    async def load_matrix(self) -> None:
        """The anchors (and pinned rows) down, every run with bench results across."""
        rows = [*(self.anchor_rows or []), *self.pinned] if self.pinned else None
        try:
            matrix = await self.client.anchors([], rows)
        except EngineCallError as exc:
            if "[gate]" in str(exc):
                self.anchor_rows = []
                self._line("#anchor-title", "no [gate] anchors in campaign.toml: m on a diff row adds it here")
            else:
                self._line("#anchor-title", f"anchor matrix not loaded: {exc}")
            self.matrix.clear(columns=True)
            return
        if rows is None:
            self.anchor_rows = list(matrix.rows)
        extra = f" + {len(self.pinned)} pinned (m)" if self.pinned else ""
        anchors = len(self.anchor_rows or [])
        self._line("#anchor-title", f"anchor matrix: {anchors} gate anchors{extra} × {len(matrix.runs)} runs")
        self.matrix.show(matrix, production=self.production, candidate=self.candidate, baseline=self.baseline)
