"""``tunedeck FOLDER`` on a folder of campaigns: a list to pick one from, before the cockpit opens on it.

A small app of its own (the cockpit needs its campaign, hence its engine, from the start). It
reads only what is on disk — each campaign.toml's name and description, its runs, the production
pointer — and never starts an engine. A campaign whose campaign.toml is broken is listed with
its error, so a person sees why it cannot be opened instead of not seeing it at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Label, OptionList
from textual.widgets.option_list import Option

from engine.errors import TunedeckError
from engine.store.campaign import CAMPAIGN_FILE, Campaign


@dataclass(frozen=True)
class CampaignEntry:
    """One campaign of the folder, as the list shows it."""

    root: Path
    title: str
    detail: str
    error: str | None = None


def _production(root: Path) -> str | None:
    try:
        run = json.loads((root / "production.json").read_text(encoding="utf-8")).get("run")
    except (OSError, ValueError, AttributeError):
        return None
    return run if isinstance(run, str) else None


def describe(root: Path) -> CampaignEntry:
    """What the list says about the campaign in ``root``."""
    try:
        campaign = Campaign.open(root)
    except TunedeckError as exc:
        return CampaignEntry(root, root.name, f"cannot be opened: {exc}", error=str(exc))
    runs = campaign.run_names()
    production = _production(root)
    detail = f"{len(runs)} run(s)" + (f", production {production}" if production else "")
    if campaign.config.description:
        detail += f" — {campaign.config.description}"
    return CampaignEntry(root, campaign.config.name, detail)


def find_campaigns(folder: Path) -> list[Path]:
    """The campaign folders directly inside ``folder``, by name."""
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []
    return [p for p in children if (p / CAMPAIGN_FILE).is_file()]


def _heading(entry: CampaignEntry) -> str:
    folder = entry.root.name
    return folder if entry.title == folder else f"{folder}  ({entry.title})"


class CampaignPicker(App[Path]):
    """Lists the campaigns of a folder; Enter returns the chosen one's folder, q/Escape returns None."""

    TITLE = "tunedeck: pick a campaign"
    BINDINGS = [Binding("escape,q", "quit", "Quit")]

    def __init__(self, folder: Path, campaigns: list[Path]) -> None:
        super().__init__()
        self.folder = folder
        self.entries = [describe(root) for root in campaigns]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(f"Campaigns in {self.folder}  (Enter opens one)", id="picker-title")
        options = [
            Option(f"{_heading(entry)}\n  {entry.detail}", id=str(index), disabled=bool(entry.error))
            for index, entry in enumerate(self.entries)
        ]
        yield OptionList(*options, id="picker-list")
        yield Footer()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.exit(self.entries[int(event.option.id or 0)].root)
