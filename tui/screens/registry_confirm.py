"""The confirmation before a promote or revert: what production becomes, the gate's answer, a reason.

Shown with the engine's dry-run answer (``RegistryResult`` with ``dry_run``). A passing gate (or
no gate, or a revert) asks for an optional reason; a failing gate lists its failed rules and rows
and needs a typed reason to force past it: Enter on an empty reason does nothing but say so.
Dismisses with the reason ("" for none) or None when cancelled (Escape).
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from engine.api import GateResult, ProductionPointer, RegistryResult
from engine.api.registry import MAX_REASON


def _pointer(pointer: ProductionPointer | None) -> str:
    if pointer is None:
        return "none"
    sha = f", sha256 {pointer.sha256[:12]}" if pointer.sha256 else ""
    return f"{pointer.run} ({pointer.artifact or 'no artifact recorded'}{sha})"


def gate_text(gate: GateResult | None) -> Text:
    """PASSED, or FAILED with each failed rule (each names its anchors and lost rows), and the gate's notes."""
    if gate is None:
        return Text("gate: none (campaign.toml has no [gate])", style="dim")
    if gate.passed:
        return Text(f"gate: PASSED for {gate.run}", style="bold green")
    text = Text(f"gate: FAILED for {gate.run}", style="bold red")
    for reason in gate.reasons:
        text.append(f"\n  ✗ {reason}")
    for note in gate.notes:
        text.append(f"\n  note: {note}", style="dim")
    return text


class RegistryConfirmScreen(ModalScreen[str | None]):
    """Asks before a promote or revert; ``force`` is needed when the preview was refused by the gate."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, preview: RegistryResult, *, current: ProductionPointer | None, run: str | None = None) -> None:
        super().__init__()
        self.preview = preview
        self.current = current
        self.run = run  # the run a promote is about (a refused preview carries no entry to read it from)
        self.needs_reason = preview.refused == "gate"  # forcing past the gate must say why

    @property
    def title_text(self) -> str:
        """The question."""
        if self.preview.action == "revert":
            return "Revert production?"
        return (
            f"Force {self.run} into production past the failed gate?" if self.needs_reason else f"Promote {self.run}?"
        )

    def _becomes(self) -> str:
        if self.preview.refused is None:
            return _pointer(self.preview.production)
        return f"{self.run}, if forced (its artifact is checked then)"

    def compose(self) -> ComposeResult:
        preview = self.preview
        with Vertical(id="registry-dialog"):
            yield Label(self.title_text, id="registry-question")
            yield Static(f"production now: {_pointer(self.current)}", id="registry-now")
            yield Static(f"becomes:        {self._becomes()}", id="registry-becomes")
            if preview.action == "promote":
                yield Static(gate_text(preview.gate), id="registry-gate")
            for warning in preview.warnings:
                yield Static(Text(f"! {warning}", style="yellow"))
            placeholder = "reason (required: it is logged with the force)" if self.needs_reason else "reason (optional)"
            yield Input(placeholder=placeholder, max_length=MAX_REASON, id="registry-reason")
            action = "force the promote" if self.needs_reason else preview.action
            yield Label(f"Enter: {action} · Escape: cancel", id="registry-hint")

    def on_mount(self) -> None:
        self.query_one("#registry-reason", Input).focus()

    @on(Input.Submitted, "#registry-reason")
    def _submitted(self, event: Input.Submitted) -> None:
        reason = event.value.strip()
        if self.needs_reason and not reason:
            hint = "type a reason first: forcing past a failed gate is logged with why (Escape cancels)"
            self.query_one("#registry-hint", Label).update(hint)
            self.notify(hint, severity="warning")
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)
