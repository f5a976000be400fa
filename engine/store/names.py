"""Run names: user-chosen, but never a path outside the campaign."""

from __future__ import annotations

import re

from engine.errors import RunNameError

_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def validate_run_name(name: str, *, source: str | None = None, field: str | None = None) -> str:
    """Return ``name`` if it is a safe run name (letters, digits, ``.``, ``_``, ``-``), else raise."""
    if not is_valid_run_name(name):
        raise RunNameError(
            f"invalid run name {name!r}: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit, no '..', at most 100 characters)",
            path=source,
            field=field,
        )
    return name


def is_valid_run_name(name: str) -> bool:
    """Whether ``name`` would pass ``validate_run_name``."""
    return bool(_RUN_NAME.fullmatch(name)) and ".." not in name
