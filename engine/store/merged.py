"""A run's merged model counts only when it is whole: its manifest lists every file with its hash.

``tunedeck merge`` writes ``runs/<run>/merged/`` through a temporary folder and a rename, and
records in ``manifest.json`` the sha256 and size of every file it wrote. A folder that lost a
file, gained a truncated one, or was written by two merges at once does not verify, and then
nothing uses it in place of the adapter without saying so.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from engine.store.checkpoints import has_weights

MANIFEST = "manifest.json"


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (the manifest excepted), by relative path."""
    hashes = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        hashes[str(path.relative_to(folder))] = digest.hexdigest()
    return hashes


def merged_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a whole merged model (a short reason), or None when it verifies."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no manifest.json"
    except (OSError, ValueError):
        return "manifest.json does not parse"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not files:
        return "manifest.json lists no files"
    if not has_weights(folder):
        return "no model weights"
    found = file_hashes(folder)
    for name, digest in files.items():
        if name not in found:
            return f"{name} is missing"
        if found[name] != digest:
            return f"{name} does not match its hash in manifest.json"
    return None
