"""The production pointer: ``<campaign>/production.json`` names the run serving in production.

``{"run": "bd6.8d", "artifact": "runs/bd6.8d/merged", "promoted_at": "2026-05-02T10:00:00Z"}``

It is replaced atomically (temp file + rename) and every change is also one line appended to
registry.jsonl. This module reads it; promote and revert build on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, NotFoundError
from engine.store.campaign import Campaign
from engine.store.names import is_valid_run_name

PRODUCTION_FILE = "production.json"
REGISTRY_FILE = "registry.jsonl"


def production_path(campaign: Campaign) -> Path:
    return campaign.root / PRODUCTION_FILE


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
