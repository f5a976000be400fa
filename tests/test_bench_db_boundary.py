"""BenchDB is the only way to DuckDB: named queries from queries/*.sql, their errors ours."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.bench.db import BenchDB, opened
from engine.errors import BenchQueryError, TunedeckError
from tests.bench_fixtures import BENCH_CAMPAIGN, copy_campaign
from tests.helpers import REPO


@pytest.fixture
def db(tmp_path: Path) -> Iterator[BenchDB]:
    with opened(copy_campaign(BENCH_CAMPAIGN, tmp_path / "c")) as db:
        yield db


def test_run_has_rows(db: BenchDB) -> None:
    assert db.query("run_has_rows", run="cand") == [(1,)]
    assert db.query("run_has_rows", run="nope") == []


def test_run_verdicts_in_natural_order(db: BenchDB) -> None:
    verdicts = db.query("run_verdicts", run="cand")
    assert [f"{bench}:{task}" for bench, task, _ in verdicts] == [
        *(f"code:T/{i}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 105)),
        "madison:q1",
        "madison:q2",
    ]
    # T/3's first sample passed (its second did not): the verdict is the first sample's.
    assert {task: passed for _, task, passed in verdicts}["T/3"] is True
    assert [task for _, task, passed in verdicts if not passed] == ["T/6", "T/7", "T/8", "T/11", "T/12", "T/105"]


def test_passed_rows_are_keys(db: BenchDB) -> None:
    keys = [key for (key,) in db.query("passed_rows", run="base")]
    assert keys == [*(f"code:T/{i}" for i in range(1, 9)), "code:T/99", "madison:q1", "madison:q2", "madison:q3"]


def test_run_metrics_table_feeds_eval_rewards(db: BenchDB) -> None:
    db.materialise(
        "run_metrics", "run_metrics",
        runs=["a", "a", "b"], steps=[10, 20, 10], metrics=["eval/x"] * 3, values=[0.25, 0.5, 0.75],
    )  # fmt: skip
    rewards = db.records("eval_rewards", baseline="b")
    assert [(r["run"], r["last"], r["last_step"], r["points"], r["delta"]) for r in rewards] == [
        ("a", 0.5, 20, 2, -0.25),
        ("b", 0.75, 10, 1, 0.0),
    ]
    db.materialise("run_metrics", "run_metrics", runs=[], steps=[], metrics=[], values=[])
    assert db.records("eval_rewards", baseline=None) == []


def test_diff_joined_materialised_once_for_both_queries(db: BenchDB) -> None:
    db.materialise("diff_joined", "diff_joined", candidate="cand", baseline="base")
    classes = {key: klass for key, klass, _ in db.query("diff")}
    assert (classes["code:T/6"], classes["code:T/9"], classes["code:T/105"]) == ("lost", "gained", "only_candidate")
    totals = {r["bench"]: r for r in db.records("diff_totals")}
    assert (totals["code"]["kept"], totals["code"]["lost"], totals["code"]["gained"]) == (5, 3, 2)


def test_judge_rows_weights_declared_categories(db: BenchDB) -> None:
    rows = db.records("judge_rows", categories=["voice"], weights=[1.0], runs=["cand"])
    assert [(r["task_id"], r["overall"]) for r in rows][:2] == [("q1", 9.0), ("q2", 7.0)]


def test_a_failing_query_is_our_error_naming_it(db: BenchDB) -> None:
    with pytest.raises(BenchQueryError, match=r"^query pass_rates failed: .*runs") as caught:
        db.query("pass_rates")  # $runs not given
    assert isinstance(caught.value, TunedeckError)
    assert caught.value.query == "pass_rates"
    assert "\n" not in str(caught.value)  # one line, as the CLI prints it
    with pytest.raises(BenchQueryError, match=r"^query diff_joined failed: .*baseline"):
        db.materialise("diff_joined", "diff_joined", candidate="cand")


def test_an_unknown_query_name_is_our_error(db: BenchDB) -> None:
    with pytest.raises(BenchQueryError, match=r"^query no_such_query failed: no such query"):
        db.records("no_such_query")
    with pytest.raises(BenchQueryError, match="no such query"):
        db.query("../campaign")


def test_positional_parameters(db: BenchDB) -> None:
    with pytest.raises(BenchQueryError, match="query run_verdicts failed"):
        db.query("run_verdicts", "cand")  # the query names $run: a ? argument does not fit it
    with pytest.raises(TypeError):
        db.query("run_verdicts", "cand", run="cand")


def test_no_query_file_is_orphaned() -> None:
    """Every queries/*.sql is named by the engine (a query nothing runs is dead code)."""
    names = {path.stem for path in (REPO / "queries").glob("*.sql")}
    engine = "\n".join(path.read_text(encoding="utf-8") for path in (REPO / "engine").rglob("*.py"))
    assert {name for name in names if f'"{name}"' not in engine and f"'{name}'" not in engine} == set()


def test_nothing_outside_bench_db_touches_the_connection() -> None:
    offenders = []
    for path in sorted((REPO / "engine").rglob("*.py")):
        if path == REPO / "engine" / "bench" / "db.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "con":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
