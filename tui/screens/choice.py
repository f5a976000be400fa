"""An ``ask`` node of a decision tree put to a person: its question, the facts beside it, its named choices."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


class ChoiceScreen(ModalScreen[str | None]):
    """Dismisses with the chosen choice's name, or None (Escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, choices: list[str], facts: list[str]) -> None:
        super().__init__()
        self.question = question
        self.choices = choices
        self.facts = facts

    def compose(self) -> ComposeResult:
        with Vertical(id="choice-dialog"):
            yield Label(self.question, id="choice-question")
            if self.facts:
                yield Label("\n".join(f"  {fact}" for fact in self.facts), id="choice-facts")
            yield OptionList(*(Option(choice, id=choice) for choice in self.choices), id="choice-list")
            yield Label("Enter picks, Escape cancels", id="choice-hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Close without an answer."""
        self.dismiss(None)
