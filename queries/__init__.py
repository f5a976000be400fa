"""DuckDB queries as ``*.sql`` files shipped inside the wheel, loaded by name."""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def load(name: str) -> str:
    """The text of ``queries/<name>.sql`` (``FileNotFoundError`` when there is none)."""
    if not name.isidentifier():
        raise ValueError(f"not a query name: {name!r}")
    return resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
