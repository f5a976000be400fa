"""Pick what the Compare screen compares: its baseline (production, or any run or checkpoint with bench
results), or its candidate (any run or checkpoint with bench results: ``RUN@300`` for a probe)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

PRODUCTION = "production"


class PickBaselineScreen(ModalScreen[str | None]):
    """Dismisses with ``"production"``, a ref, or None (Escape: keep the baseline)."""

    BINDINGS = [Binding("escape", "cancel", "Keep the baseline")]

    def __init__(
        self,
        refs: list[str],
        *,
        production: str | None,
        current: str | None,
        prompt: str = "Compare against (enter picks, escape keeps the current one):",
        offer_production: bool = True,
    ) -> None:
        super().__init__()
        self.refs = refs
        self.production = production
        self.current = current  # None: production
        self.prompt = prompt
        self.offer_production = offer_production  # False: picking a candidate, which is a ref

    def compose(self) -> ComposeResult:
        prod = f"production ({self.production})" if self.production else "production (none yet)"
        options = [Option(prod, id=PRODUCTION)] if self.offer_production else []
        options += [Option(ref + ("  ★" if ref == self.production else ""), id=ref) for ref in self.refs]
        with Vertical(id="baseline-dialog"):
            yield Label(self.prompt)
            yield OptionList(*options, id="baseline-options")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        wanted = self.current or PRODUCTION
        ids = [PRODUCTION, *self.refs] if self.offer_production else list(self.refs)
        options.highlighted = ids.index(wanted) if wanted in ids else 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Close without changing the baseline."""
        self.dismiss(None)
