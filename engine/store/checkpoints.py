"""Checkpoints of a run: which are complete, and which to resume from.

A checkpoint folder is complete once it holds trainer_state.json, which Trainer writes
last; a crash during a save leaves an empty or partial ``checkpoint-N/`` that must be skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def complete_checkpoints(folder: Path) -> dict[int, Path]:
    """Complete checkpoints under ``folder`` by step."""
    if not folder.is_dir():
        return {}
    found = {}
    for child in folder.iterdir():
        match = _CHECKPOINT.fullmatch(child.name)
        if match and child.is_dir() and (child / "trainer_state.json").is_file():
            found[int(match.group(1))] = child
    return dict(sorted(found.items()))


def newest_complete_checkpoint(folder: Path) -> Path | None:
    """The highest-step complete checkpoint, or None."""
    found = complete_checkpoints(folder)
    return found[max(found)] if found else None
