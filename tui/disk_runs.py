"""The Runs table's first rows, read from the campaign's files while the engine is still starting.

A launch that has to start the engine waits seconds for it (Python, FastAPI, the bench cache); the
runs and the production pointer are on disk already, so the table shows them at once — state and
step derived from the files exactly as the engine derives them (engine.runs.run_state) — and the
engine's fuller rows replace them when it answers. Only for a local campaign: a remote engine's
files are not here.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import TunedeckError
from engine.runs.run_state import run_status
from engine.store.campaign import Campaign
from engine.store.production import read_production
from tui.widgets.runs_table import status_cells


def runs_from_disk(root: Path) -> list[tuple[str, tuple[str, ...]]]:
    """``(run, cells)`` for every run of the campaign at ``root``, production marked ★; [] if unreadable."""
    try:
        campaign = Campaign.open(root)
        pointer = read_production(campaign)
        rows = []
        for name in campaign.run_names():
            cells = status_cells(run_status(name, campaign.run(name)))
            if pointer is not None and pointer.get("run") == name:
                cells = (f"★ {name}", *cells[1:])
            rows.append((name, cells))
        return rows
    except (TunedeckError, OSError):
        return []  # the engine will say what is wrong, in its own words
