"""What counts as a number in a JSON record: an int or a float, never a bool.

``json.loads`` gives ``true`` as ``True``, and Python's ``bool`` is an ``int``: a metric logged as
``true`` or a ``"weight": false`` must not pass for 1 or 0. Every reader of numbers in metrics,
datasets, bench rows and trainer states asks here.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard


def is_number(value: Any) -> TypeGuard[int | float]:
    """True for an int or a float (NaN and infinities included); False for a bool and anything else."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_finite_number(value: Any) -> TypeGuard[int | float]:
    """A number that is neither NaN nor infinite."""
    return is_number(value) and math.isfinite(value)


def is_integer(value: Any) -> TypeGuard[int]:
    """True for an int that is not a bool (``10.0`` is not an integer here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def as_number(value: Any) -> float | None:
    """``value`` as a float, or None when it is not a number (null, text, a bool)."""
    return float(value) if is_number(value) else None
