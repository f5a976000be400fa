"""DuckDB queries as ``*.sql`` files shipped inside the wheel, loaded by name."""

from __future__ import annotations

from importlib import resources


def load(name: str) -> str:
    """The text of ``queries/<name>.sql``."""
    return resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
