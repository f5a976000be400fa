"""Find the line of a key in a TOML file, so validation errors can name it.

``tomllib`` gives no positions; this scans table headers and ``key =`` lines, which is
enough for the flat, hand-written configs tunedeck reads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\"'-]+)\s*=")


def _clean(part: str) -> str:
    return part.strip().strip("\"'")


def line_of(text: str, loc: Sequence[str | int]) -> int | None:
    """1-based line of the key at ``loc``, e.g. ``("lora", "r")`` or ``("weights", "rules", 1, "weight")``."""
    keys = [str(p) for p in loc if not isinstance(p, int)]
    indices = [p for p in loc if isinstance(p, int)]
    if not keys:
        return None
    table: list[str] = []
    array_counts: dict[str, int] = {}
    best: int | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            table = [_clean(p) for p in header.group(2).split(".")]
            occurrence = None
            if header.group(1) == "[[":
                name = ".".join(table)
                array_counts[name] = array_counts.get(name, -1) + 1
                occurrence = array_counts[name]
            # An error on a whole array-of-tables entry names its own header, not the first one.
            wanted = occurrence is None or not indices or occurrence == indices[0]
            # A table's own header, or the first header of a table inside it (`[benches.x]` for "benches").
            if table[: len(keys)] == keys and best is None and wanted:
                best = lineno
            continue
        key = _KEY.match(raw)
        if not key:
            continue
        path = table + [_clean(p) for p in key.group(1).split(".")]
        if path != keys[: len(path)] or not path:
            continue
        # For arrays of tables, only the occurrence at the requested index counts.
        if indices and table:
            name = ".".join(table)
            if name in array_counts and array_counts[name] != indices[0]:
                continue
        if path == keys:
            return lineno
        if best is None:
            best = lineno
    return best
