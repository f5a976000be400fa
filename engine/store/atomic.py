"""Folders that appear whole or not at all: built under a temporary name, then renamed into place.

What goes live gets the modes the user's umask asks for: staging folders are made with
``mkdtemp`` (0700) and ``save_pretrained`` writes its weights 0600 whatever the umask, and a
merged model or adapter another user of the machine cannot read is not what anyone meant.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from engine.store.safe_paths import refuse_symlinks


def current_umask() -> int:
    """This process's umask, read without changing it (Linux: /proc/self/status)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no /proc: read it by setting it, and put it straight back
    os.umask(mask)
    return mask


def apply_umask(top: Path) -> None:
    """Give ``top`` and everything under it the modes a plain mkdir / open would have given."""
    mask = current_umask()
    os.chmod(top, 0o777 & ~mask)
    for root, dirs, files in os.walk(top):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~mask)


def replace_folder(staging: Path, target: Path) -> None:
    """Move a fully written ``staging`` folder to ``target``, replacing an older one.

    The old folder is renamed aside first (a rename cannot replace a non-empty folder), so at
    every moment ``target`` is either the old whole folder, absent, or the new whole folder.
    """
    refuse_symlinks(target)
    apply_umask(staging)
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)
