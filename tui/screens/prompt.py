"""One line of text asked for in a modal dialog (a run.toml's path, a reason): Enter answers, Escape cancels."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class PromptScreen(ModalScreen[str | None]):
    """Dismisses with the text typed (stripped, never empty) or None (Escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, *, placeholder: str = "", value: str = "") -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-dialog"):
            yield Label(self.question, id="prompt-question")
            yield Input(value=self.value, placeholder=self.placeholder, id="prompt-input")
            yield Label("Enter to go on, Escape to cancel", id="prompt-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            self.dismiss(text)
        else:
            self.query_one("#prompt-hint", Label).update("type something first (or Escape to cancel)")

    def action_cancel(self) -> None:
        """Close without an answer."""
        self.dismiss(None)
