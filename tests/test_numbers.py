"""One answer to "is this a number" for every reader of JSON records: never a bool."""

from __future__ import annotations

import math
from typing import Any

import pytest

from engine.store.numbers import as_number, is_finite_number, is_integer, is_number


@pytest.mark.parametrize(
    ("value", "number", "finite", "integer"),
    [
        (0, True, True, True),
        (3, True, True, True),
        (2.5, True, True, False),
        (10.0, True, True, False),
        (math.nan, True, False, False),
        (math.inf, True, False, False),
        (True, False, False, False),
        (False, False, False, False),
        (None, False, False, False),
        ("1", False, False, False),
        ([1], False, False, False),
    ],
)
def test_numbers(value: Any, number: bool, finite: bool, integer: bool) -> None:
    assert is_number(value) is number
    assert is_finite_number(value) is finite
    assert is_integer(value) is integer


def test_as_number() -> None:
    assert as_number(3) == 3.0
    assert isinstance(as_number(3), float)
    assert as_number(True) is None
    assert as_number("0.5") is None
    assert math.isnan(as_number(math.nan) or 0.0)


def test_a_boolean_is_not_a_metric_a_weight_or_a_sample(tmp_path: Any) -> None:
    """The readers that use the helper refuse bools where they want numbers."""
    from engine.bench.rows import check_row
    from engine.errors import DatasetError, ImportFormatError
    from engine.runs.watch import WatchState
    from engine.store.datasets import parse_row
    from engine.store.metrics import merge_by_step
    from engine.store.watch_rules import WatchRule

    with pytest.raises(DatasetError, match="weight"):
        parse_row({"prompt": "p", "completion": "c", "weight": True}, tmp_path / "d.jsonl", 1)
    with pytest.raises(ImportFormatError, match="sample"):
        check_row({"bench": "b", "task_id": "t", "passed": True, "sample": True}, run="r", bench=None, path="f", line=1)
    assert merge_by_step([{"step": True, "loss": 1.0}, {"step": 1, "loss": 2.0}]) == [{"step": 1, "loss": 2.0}]
    rule = WatchRule.model_validate({"name": "r", "metric": "m", "above": 0.5, "action": "warn"})
    state = WatchState([rule])
    assert state.feed({"step": 1, "m": True}) == []  # true is not 1: it does not exceed 0.5
    assert [a.rule for a in state.feed({"step": 2, "m": 1.0})] == ["r"]
