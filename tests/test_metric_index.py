"""The engine's column index of a run's metrics against the definition: engine.store.metrics' merge.

The index (engine/service/metric_index.py) is what every chart's history comes from; it is built in
bulk from a long file and then fed appended lines in batches. Whatever the batches, each metric's
(step, value, ts) columns must be what ``merge_by_step`` says — later lines win per (step, metric),
steps that are not integers skipped, non-numbers no points — and ``latest`` the value at the highest
step (None when that value is not a number).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.service.file_follow import FileFollower
from engine.service.metric_index import RunIndex
from engine.store.metrics import NON_METRIC_KEYS

KEYS = ("loss", "grad_norm", "eval/mean_reward", "note")
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.integers(-5, 5),
    st.booleans(),
    st.none(),
    st.sampled_from(["text", ""]),
)
STEPS = st.one_of(st.integers(0, 12), st.sampled_from([1.5, "3", None, True, -1]))
RECORDS = st.lists(
    st.fixed_dictionaries(
        {"step": STEPS},
        optional={
            "ts": st.one_of(st.floats(0, 1e9), st.none(), st.just("late")),
            **{key: VALUES for key in KEYS},
        },
    ),
    max_size=40,
)


def oracle(records: list[dict[str, Any]]) -> tuple[dict[str, list[tuple[int, float, float]]], dict[str, Any]]:
    """Per metric the (step, value, ts) points of the merge, and each metric's latest value, by the definition."""
    merged: dict[tuple[str, int], tuple[Any, float]] = {}
    latest: dict[str, tuple[int, Any]] = {}
    for record in records:
        step = record.get("step")
        if type(step) is not int:
            continue
        stamp: Any = record.get("ts")
        ts = float(stamp) if type(stamp) in (int, float) else math.nan
        for key, value in record.items():
            if key in NON_METRIC_KEYS:
                continue
            merged[(key, step)] = (value, ts)  # a later line wins
            if key not in latest or step >= latest[key][0]:
                latest[key] = (step, value)
    columns: dict[str, list[tuple[int, float, float]]] = {}
    for (key, step), (value, ts) in sorted(merged.items(), key=lambda item: (item[0][0], item[0][1])):
        if type(value) in (int, float):
            columns.setdefault(key, []).append((step, float(value), ts))
    shown = {key: (float(v) if type(v) in (int, float) else None) for key, (_, v) in latest.items()}
    return columns, shown


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def index_of(tmp: Path, batches: list[list[dict[str, Any]]]) -> RunIndex:
    path = tmp / "metrics.jsonl"
    path.write_text("")
    index = RunIndex(FileFollower(path))
    for batch in batches:
        with open(path, "a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(record) + "\n" for record in batch)
        index.refresh()
    return index


@settings(max_examples=150, deadline=None)
@given(records=RECORDS, cuts=st.lists(st.integers(0, 40), max_size=3))
def test_the_index_is_the_merge_whatever_the_batches(tmp_path_factory: Any, records: list[dict[str, Any]],
                                                     cuts: list[int]) -> None:  # fmt: skip
    bounds = sorted({0, len(records), *(min(c, len(records)) for c in cuts)})
    batches = [records[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    index = index_of(tmp_path_factory.mktemp("index"), batches)
    want_columns, want_latest = oracle(records)
    got = {
        key: list(zip(col.steps.tolist(), col.values.tolist(), col.ts.tolist(), strict=True))
        for key, col in index.columns.items()
        if col.steps.size
    }
    assert set(got) == set(want_columns)
    for key, points in want_columns.items():
        assert len(got[key]) == len(points), key
        for (s1, v1, t1), (s2, v2, t2) in zip(got[key], points, strict=True):
            assert s1 == s2
            assert _same(v1, v2), (key, s1, v1, v2)
            assert _same(t1, t2), (key, s1, t1, t2)
    latest = {key: value for key, (_, value) in index.latest.items()}
    assert set(latest) == set(want_latest)
    for key, value in want_latest.items():
        found = latest[key]
        if value is None or found is None:
            assert value is found, key
        else:
            assert _same(found, value), key
    steps = sorted({r["step"] for r in records if type(r.get("step")) is int})
    assert index.step_set.steps.tolist() == steps
