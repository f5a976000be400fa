"""Checkpoints of a run: which are complete, and which to resume from.

Trainer writes a checkpoint's weights first and trainer_state.json last, and a crash during a
save leaves an empty or partial ``checkpoint-N/``. A checkpoint counts as complete only when
its trainer_state.json parses as Trainer's state (an object with ``global_step``) *and* its
weights are there and non-empty: a 0-byte trainer_state.json (a full disk, a kill between
create and write) or a folder whose weights are missing must never be what a resume, a merge
or a bench picks, or every resume fails until someone deletes the folder by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
# A LoRA checkpoint holds adapter_model.*; a full fine-tune (and TRL's) model.* or shards of it.
WEIGHT_PATTERNS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "pytorch_model.bin",
                   "model-*-of-*.safetensors", "pytorch_model-*-of-*.bin")  # fmt: skip


def has_weights(folder: Path) -> bool:
    """Whether ``folder`` holds non-empty model or adapter weights."""
    for pattern in WEIGHT_PATTERNS:
        for path in folder.glob(pattern):
            try:
                if path.is_file() and path.stat().st_size > 0:
                    return True
            except OSError:
                continue
    return False


def _state_parses(path: Path) -> bool:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and isinstance(state.get("global_step"), int)


def is_complete_checkpoint(folder: Path) -> bool:
    """trainer_state.json parses and the weights exist (see the module docstring)."""
    return folder.is_dir() and _state_parses(folder / "trainer_state.json") and has_weights(folder)


def complete_checkpoints(folder: Path) -> dict[int, Path]:
    """Complete checkpoints under ``folder`` by step."""
    if not folder.is_dir():
        return {}
    found = {}
    for child in folder.iterdir():
        match = _CHECKPOINT.fullmatch(child.name)
        if match and is_complete_checkpoint(child):
            found[int(match.group(1))] = child
    return dict(sorted(found.items()))


def newest_complete_checkpoint(folder: Path) -> Path | None:
    """The highest-step complete checkpoint, or None."""
    found = complete_checkpoints(folder)
    return found[max(found)] if found else None
