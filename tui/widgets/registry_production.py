"""The production pointer as the Registry screen shows it: run, artifact, hash, since when, and any note."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from engine.api import ProductionPointer


def production_text(pointer: ProductionPointer | None, note: str | None, in_sync: bool = True) -> Text:
    """Two lines: the pointer (or "none"), then the note in a muted or warning style."""
    text = Text("production  ", style="bold")
    if pointer is None:
        text.append("none", style="italic")
    else:
        text.append(f"★ {pointer.run}", style="bold")
        text.append(f"   {pointer.artifact or 'no artifact recorded'}")
        if pointer.kind:
            text.append(f" ({pointer.kind})")
        text.append(f"   sha256 {pointer.sha256[:12] if pointer.sha256 else '—'}")
        text.append(f"   since {pointer.promoted_at or '—'}")
    if note:
        text.append(f"\n{note}", style="dim" if in_sync else "bold yellow")
    return text


class ProductionPanel(Static):
    """Shows ``production_text`` of the latest answer."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("production  …", id=id)
        self.pointer: ProductionPointer | None = None

    def show(self, pointer: ProductionPointer | None, note: str | None, in_sync: bool) -> None:
        """Show a new pointer and its note."""
        self.pointer = pointer
        self.update(production_text(pointer, note, in_sync))
