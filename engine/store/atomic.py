"""Folders that appear whole or not at all: built under a temporary name, then renamed into place."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def replace_folder(staging: Path, target: Path) -> None:
    """Move a fully written ``staging`` folder to ``target``, replacing an older one.

    The old folder is renamed aside first (a rename cannot replace a non-empty folder), so at
    every moment ``target`` is either the old whole folder, absent, or the new whole folder.
    """
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)
