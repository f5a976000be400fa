"""Writing a session's tiny datasets (sessions/v4_1 and sessions/foundry generate theirs with tools/make_tiny.py).

One writer for both, so the committed files keep one byte format: one JSON object per line, non-ASCII
text as written (the PT-BR targets), under ``<campaign>/datasets/tiny/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_tiny_datasets(out: Path, datasets: dict[str, list[dict[str, Any]]]) -> list[Path]:
    """Write each ``name -> rows`` as ``out/datasets/tiny/<name>``; returns the paths written."""
    folder = out / "datasets" / "tiny"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in datasets.items():
        path = folder / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        written.append(path)
    return written
