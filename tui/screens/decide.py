"""The Decide screen (key 4): walk the campaign's decision tree on a run, answer its asks, create the next run.

The engine walks the tree (``POST /runs/{run}/decide``: facts from metrics, benches and the gate;
the walk is saved in the run's folder) and the screen shows the path node by node with the fact
each node read, every fact's value (an unknown one in red: the tree never guesses), and how the
walk ended: a recommendation with its reasons and config patch, or the question it waits on.
Answers are kept per run for as long as the app runs, so walking again (after a bench import, say)
asks nothing twice.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label

from engine.api import DecisionWalk
from tui.client import EngineCallError, EngineClient
from tui.screens.choice import ChoiceScreen
from tui.screens.prompt import PromptScreen
from tui.widgets.decision_walk import FactsTable, WalkOutcome, WalkPath
from tui.widgets.status_line import StatusLine


class DecideScreen(Screen[None]):
    """The walk of one run: path, facts, outcome."""

    BINDINGS = [
        Binding("a", "answer", "Answer"),
        Binding("w", "walk", "Walk again"),
        Binding("x", "clear_answers", "Clear answers"),
        Binding("c", "create_next_run", "Create next run"),
    ]

    def __init__(self, client: EngineClient) -> None:
        super().__init__(id="decide")
        self.client = client
        self.run_name: str | None = None
        self.walk_result: DecisionWalk | None = None
        self.answers: dict[str, dict[str, str]] = {}  # run -> ask key -> choice

    def compose(self) -> ComposeResult:
        yield StatusLine()
        yield Label("no run selected: pick one on Runs (1), then press 4", id="decide-title")
        with Horizontal(id="decide-body"):
            yield WalkPath(id="decide-path")
            yield FactsTable(id="decide-facts")
        with VerticalScroll(id="decide-outcome-box"):
            yield WalkOutcome(id="decide-outcome")
        yield Footer()

    def on_mount(self) -> None:
        if self.run_name is not None:
            self.walk_tree(self.run_name)

    def show_run(self, run: str) -> None:
        """Walk the tree on ``run`` (again, if it is the run already shown: its facts may have moved)."""
        self.run_name = run
        if self.is_mounted:
            self.walk_tree(run)

    @work(exclusive=True, group="decide-walk")
    async def walk_tree(self, run: str) -> None:
        """Ask the engine for the walk with this run's answers so far; show it."""
        title = self.query_one("#decide-title", Label)
        title.update(f"walking the decision tree on {run} …")
        try:
            walk = await self.client.decide(run, self.answers.get(run, {}))
        except EngineCallError as exc:
            title.update(f"{run}: no walk — {exc}")
            self.notify(str(exc), title=f"decide {run}", severity="error", timeout=10)
            return
        if run != self.run_name:
            return  # another run was picked meanwhile
        self.walk_result = walk
        title.update(f"Decide {run} — {walk.tree}: {walk.status}   (path {' → '.join(walk.path)})")
        self.query_one(WalkPath).show(walk)
        self.query_one(FactsTable).show(walk.facts)
        self.query_one(WalkOutcome).show(walk)

    def action_walk(self) -> None:
        """Walk again with the answers given so far."""
        if self._run() is not None:
            self.walk_tree(self.run_name or "")

    def action_clear_answers(self) -> None:
        """Forget this run's answers and walk again."""
        if self._run() is not None:
            self.answers.pop(self.run_name or "", None)
            self.walk_tree(self.run_name or "")

    def action_answer(self) -> None:
        """Answer the question the walk stopped at (a dialog with its choices)."""
        walk = self.walk_result
        if walk is None or not walk.questions:
            self.notify("the walk asks nothing: there is no question to answer", severity="warning")
            return
        question = walk.questions[0]
        run = walk.run

        def answered(choice: str | None) -> None:
            if choice is not None:
                self.answers.setdefault(run, {})[question.key] = choice
                self.walk_tree(run)

        self.app.push_screen(ChoiceScreen(question.question, question.choices, question.facts), answered)

    def action_create_next_run(self) -> None:
        """Write the next run's run.toml from the recommendation's patch (asks for its name first)."""
        walk = self.walk_result
        if walk is None or walk.recommendation is None:
            self.notify("no recommendation yet: answer the walk's questions first", severity="warning")
            return
        run = walk.run

        def named(new_run: str | None) -> None:
            if new_run:
                self.create_next_run(run, new_run)

        offer = f"{run}-{walk.recommendation.id}"  # a name that says where it came from; editable
        question = f"Name of the next run ({walk.recommendation.id} applied to {run}'s run.toml)"
        self.app.push_screen(PromptScreen(question, value=offer), named)

    @work(exclusive=True, group="decide-next-run")
    async def create_next_run(self, run: str, new_run: str) -> None:
        """Have the engine write runs/<new_run>/run.toml; say where, and how to start it."""
        try:
            made = await self.client.next_run_from_decision(run, new_run)
        except EngineCallError as exc:
            self.notify(str(exc), title=f"next run from {run}", severity="error", timeout=10)
            return
        self.notify(f"wrote {made.run_toml} ({made.recommendation}); start it from Runs (1) with r, or: {made.start}")

    def _run(self) -> str | None:
        if self.run_name is None:
            self.notify("no run selected: pick one on Runs (1)", severity="warning")
        return self.run_name
