"""Writing the report to a file the user names: whole or not at all, never over their file by surprise.

The Markdown goes to a temporary file beside the target, synced, then takes the target's name:
by a hard link when the target must not exist (the link fails if it does, so a file that appears
meanwhile is not replaced either), by a rename with ``force``. A symlink is never written through.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from engine.errors import TunedeckError
from engine.store.atomic import current_umask
from engine.store.safe_paths import refuse_symlinks


class ReportRefused(TunedeckError):
    """The report was not written: the file exists (without ``--force``), or it is a symlink or a folder."""


def check_target(path: str | Path, *, force: bool) -> Path:
    """``path`` made absolute, or ``ReportRefused`` saying why the report will not be written there."""
    try:
        target = refuse_symlinks(path)
    except TunedeckError as exc:
        raise ReportRefused(exc.message, path=exc.path, field="--out") from None
    if target.is_dir():
        raise ReportRefused("is a folder: name a file", path=target, field="--out")
    if os.path.lexists(target) and not force:
        raise ReportRefused("already exists; pass --force to replace it", path=target, field="--out")
    return target


def write_report(path: str | Path, markdown: str, *, force: bool = False) -> Path:
    """Write ``markdown`` to ``path`` atomically; the path written."""
    target = check_target(path, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; a plain open would honour the umask
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(markdown)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            os.replace(tmp, target)  # replaces a symlink that appeared meanwhile, never its target
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise ReportRefused("already exists; pass --force to replace it", path=target, field="--out") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
