"""The production pointer: ``<campaign>/production.json`` names the run serving in production.

``{"run": "bd6.8d2", "artifact": "runs/bd6.8d2/merged", "kind": "merged", "sha256": "…",
"promoted_at": "2026-05-02T10:00:00Z"}``; a pointer written by hand may hold only ``run``.

Every change is first one line appended to registry.jsonl (engine.decisions.registry), then this
file is replaced atomically (temp file + fsync + rename), or removed when nothing is left in
production, both under the registry lock (``.tunedeck/registry.lock``). This module reads and
writes the file; nothing is written through a symlink.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, NotFoundError
from engine.store.campaign import Campaign, engine_paths, ensure_private_dir
from engine.store.jsonl import write_text_atomic
from engine.store.locks import ExclusiveLock
from engine.store.names import is_valid_run_name
from engine.store.safe_paths import refuse_symlinks

PRODUCTION_FILE = "production.json"
REGISTRY_FILE = "registry.jsonl"


def production_path(campaign: Campaign) -> Path:
    return campaign.root / PRODUCTION_FILE


def registry_path(campaign: Campaign) -> Path:
    return campaign.root / REGISTRY_FILE


def registry_lock(campaign: Campaign) -> ExclusiveLock:
    """Held around read-log, decide, append, replace: one promote or revert at a time, across processes."""
    folder = ensure_private_dir(refuse_symlinks(engine_paths(campaign.root).root))
    return ExclusiveLock(folder / "registry.lock", what="another promote or revert is in progress")


def write_production(campaign: Campaign, pointer: dict[str, Any] | None) -> None:
    """Replace production.json with ``pointer`` atomically, or remove it when ``pointer`` is None."""
    path = refuse_symlinks(production_path(campaign))
    if pointer is None:
        if path.exists():
            os.unlink(path)  # an unlink is atomic: readers see the old pointer or none
        return
    write_text_atomic(path, json.dumps(pointer, ensure_ascii=False, indent=2) + "\n")


def read_production(campaign: Campaign) -> dict[str, Any] | None:
    """The production pointer, or None when nothing was ever promoted."""
    path = production_path(campaign)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        pointer = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    if not isinstance(pointer, dict):
        raise ConfigError("expected a JSON object", path=path)
    run = pointer.get("run")
    if not isinstance(run, str) or not is_valid_run_name(run):
        raise ConfigError(f"not a run name: {run!r}", path=path, field="run")
    return pointer


def production_run(campaign: Campaign) -> str:
    """The run in production; a clear error when there is none."""
    pointer = read_production(campaign)
    if pointer is None:
        raise NotFoundError(
            "no run is in production yet: promote one, or compare against a run with --against RUN",
            path=production_path(campaign),
        )
    return str(pointer["run"])
