"""The gate's verdict on the candidate: passed or failed, each failed rule, the failing anchors."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from engine.api import GateResult

REASON_CHARS = 400  # a lost-rows reason of a huge diff names thousands of rows: the table has them


def gate_text(gate: GateResult) -> Text:
    """``✗ GATE FAILED bd6.8d2: promotion blocked`` and one line per failed rule, then the notes."""
    if gate.passed:
        text = Text(f"✓ GATE PASSED  {gate.run}", style="bold green")
        text.append(f"   anchors {gate.anchors.passed}/{gate.anchors.total}", style="green")
    else:
        text = Text(f"✗ GATE FAILED  {gate.run}: promotion blocked", style="bold red")
    for reason in gate.reasons:
        short = reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS] + "…"
        text.append(f"\n  • {short}")
    for note in gate.notes:
        text.append(f"\n  {note}", style="dim")
    return text


class GateVerdict(Static):
    """A bordered box, green when the gate passes and red when it fails."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("gate: asking the engine…", id=id)

    def show(self, gate: GateResult) -> None:
        """The engine's ``GET /bench/gate/{run}`` answer."""
        self.set_class(gate.passed, "-passed")
        self.set_class(not gate.passed, "-failed")
        self.update(gate_text(gate))

    def show_message(self, text: str) -> None:
        """No verdict: why (no [gate], no bench results, engine gone)."""
        self.remove_class("-passed", "-failed", "-none")
        self.update(Text(f"gate: {text}", style="italic"))

    def show_no_gate(self) -> None:
        """The campaign declares no [gate]: one borderless line, the screen's rows need the room."""
        self.remove_class("-passed", "-failed")
        self.add_class("-none")
        self.update(Text("no gate: declare [gate] anchors, max_lost or min_pass_rate in campaign.toml", style="dim"))
