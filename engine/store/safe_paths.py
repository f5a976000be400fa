"""Writes stay inside the campaign: nothing tunedeck writes goes through a symlink.

A ``runs/<run>`` folder, an ``events.jsonl`` or a ``bench/<run>`` folder that is a symlink could
point anywhere — another campaign, a user's home, a system file — and an append or an atomic
replace would then change a file nobody meant tunedeck to touch. Every writer checks the path
it is about to write, from the campaign's root (the nearest folder above it holding
campaign.toml) down, and refuses a symlink at any level. Paths outside any campaign (a user's
``--out`` file) are checked for the final component only. The campaign root itself may be a
symlink: that is where the user chose to keep it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.errors import TunedeckError

CAMPAIGN_FILE = "campaign.toml"


class SymlinkRefused(TunedeckError):
    """A write would have gone through a symlink."""


def _campaign_root(path: Path) -> Path | None:
    for ancestor in path.parents:
        if (ancestor / CAMPAIGN_FILE).is_file():
            return ancestor
    return None


def refuse_symlinks(path: str | Path) -> Path:
    """``path`` made absolute, or ``SymlinkRefused`` when it or a folder below its campaign is a link."""
    target = Path(os.path.abspath(path))
    root = _campaign_root(target)
    components = [target]
    if root is not None:
        components = [p for p in reversed(target.parents) if root in p.parents] + [target]
    for component in components:
        try:
            mode = os.lstat(component).st_mode
        except FileNotFoundError:
            break  # nothing below a missing component exists yet, so no link either
        if stat.S_ISLNK(mode):
            raise SymlinkRefused(
                f"refusing to write through a symlink (-> {os.readlink(component)}); "
                "tunedeck writes only real files and folders inside the campaign",
                path=component,
            )
    return target
