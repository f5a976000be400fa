"""The TUI's monitor endpoints through the real app (httpx.ASGITransport) on real files.

Series and metric names on a generated metrics.jsonl of 1,000,000 steps (one grad_norm spike of
50 among values near 1), resumed-run duplicates, appends and replaces after the first request; the
Runs summary; the worker's console; and bench rows and the anchor matrix on sessions/bd6.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.api import JobStatus, MetricSeries, RunSummary
from engine.runs.jobs import write_job
from engine.service.app import create_app
from engine.service.console import rotate_if_over
from engine.store.campaign import Campaign
from engine.store.metrics import read_metrics, series
from tests.bench_fixtures import BD6_SESSION, copy_campaign
from tests.helpers import write_jsonl

STEPS = 1_000_000
SPIKE_STEP, SPIKE = 654_321, 50.0
RUN_TOML = 'dataset = "datasets/train.jsonl"\n'
GATE = '\n[gate]\nanchors = ["T/1", "T/2"]\n'
NO_TS = {"first_ts": None, "last_ts": None}


def make_campaign(root: Path, runs: tuple[str, ...] = ("alpha",), extra_toml: str = "") -> Campaign:
    campaign = Campaign.create(root, "monitor")
    if extra_toml:
        toml = campaign.root / "campaign.toml"
        toml.write_text(toml.read_text(encoding="utf-8") + extra_toml, encoding="utf-8")
    write_jsonl(campaign.root / "datasets" / "train.jsonl", [{"prompt": "a", "completion": "b"}])
    for name in runs:
        campaign.run(name).root.mkdir(parents=True)
        campaign.run(name).run_toml.write_text(RUN_TOML, encoding="utf-8")
    return Campaign.open(campaign.root)


def grad_norm_file(path: Path) -> None:
    """1M steps of loss / grad_norm (near 1) / learning_rate, with one grad_norm spike of 50."""
    with open(path, "w", encoding="utf-8") as out:
        for step in range(1, STEPS + 1):
            grad = SPIKE if step == SPIKE_STEP else 1.0 + (step % 7) * 0.01
            out.write(f'{{"step":{step},"loss":{2.0 - step * 1e-6:.6f},"grad_norm":{grad},"ts":{step}.5}}\n')


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(text)


async def client_for(campaign: Campaign) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(campaign))
    async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
        yield client


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[tuple[Campaign, httpx.AsyncClient]]:
    campaign = make_campaign(tmp_path / "c", ("alpha", "beta"), GATE)
    async for client in client_for(campaign):
        yield campaign, client


@pytest.fixture(scope="module")
def big_campaign(tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    campaign = make_campaign(tmp_path_factory.mktemp("big") / "c", ("long",))
    grad_norm_file(campaign.run("long").metrics)
    return campaign


async def get_series(client: httpx.AsyncClient, run: str, **params: Any) -> MetricSeries:
    response = await client.get(f"/runs/{run}/series", params=params)
    assert response.status_code == 200, response.text
    return MetricSeries.model_validate_json(response.content)


def bucket_holding(answer: MetricSeries, step: int) -> Any:
    return next(b for b in answer.buckets if b.first_step <= step <= b.last_step)


# -- series on 1,000,000 steps --------------------------------------------------------------------
@pytest.mark.slow
async def test_spike_is_a_bucket_max_at_every_zoom_level(big_campaign: Campaign) -> None:
    async for client in client_for(big_campaign):
        whole = await get_series(client, "long", metric="grad_norm", buckets=200)
        assert whole.points == STEPS
        assert len(whole.buckets) <= 200
        assert sum(b.count for b in whole.buckets) == STEPS  # every point on disk considered
        assert (whole.buckets[0].first_step, whole.buckets[0].last_step) == (1, 1)  # first point, own bucket
        assert whole.buckets[-1].last_step == STEPS
        assert whole.buckets[-1].last == 1.0 + (STEPS % 7) * 0.01
        assert bucket_holding(whole, SPIKE_STEP).max == SPIKE
        assert (whole.buckets[0].first_ts, whole.buckets[-1].last_ts) == (1.5, STEPS + 0.5)
        assert all(b.first_ts == b.first_step + 0.5 and b.last_ts == b.last_step + 0.5 for b in whole.buckets)
        assert max(b.max for b in whole.buckets if not b.first_step <= SPIKE_STEP <= b.last_step) < 1.1
        for width in (300_000, 30_000, 3_000, 300, 30, 3, 0):
            zoom = await get_series(
                client, "long", metric="grad_norm", start=SPIKE_STEP - width, end=SPIKE_STEP + width, buckets=200
            )
            assert zoom.points == 2 * width + 1
            assert bucket_holding(zoom, SPIKE_STEP).max == SPIKE, width
            assert zoom.buckets[0].first_step == SPIKE_STEP - width
            assert zoom.buckets[-1].last_step == SPIKE_STEP + width
        beside = await get_series(client, "long", metric="grad_norm", start=1, end=SPIKE_STEP - 1, buckets=50)
        assert max(b.max for b in beside.buckets) < 1.1
        names = (await client.get("/runs/long/metric-names")).json()
        assert names == {"run": "long", "steps": STEPS, "latest": {"grad_norm": 1.0 + (STEPS % 7) * 0.01, "loss": 1.0}}


# -- series semantics on small files ----------------------------------------------------------
async def test_resumed_steps_later_line_wins_as_read_metrics_says(small: tuple[Campaign, httpx.AsyncClient]) -> None:
    campaign, client = small
    path = campaign.run("alpha").metrics
    lines: list[dict[str, Any]] = [{"step": s, "loss": float(s)} for s in range(1, 11)]
    lines += [{"step": s, "loss": 100.0 + s, "grad_norm": 0.5} for s in range(6, 13)]  # resumed at 5
    lines += [{"step": 12, "eval_loss": 3.0}, {"step": "x", "loss": 9.9}, {"step": 13, "loss": None}]
    write_jsonl(path, lines)
    answer = await get_series(client, "alpha", metric="loss")
    expected = series(read_metrics(path), "loss")
    assert [(b.first_step, b.last) for b in answer.buckets] == [(s, v) for s, v in expected if v is not None]
    assert answer.buckets[5].last == 106.0
    assert answer.points == 12
    names = (await client.get("/runs/alpha/metric-names")).json()
    assert names == {"run": "alpha", "steps": 13, "latest": {"eval_loss": 3.0, "grad_norm": 0.5, "loss": None}}


async def test_appends_and_replaces_after_the_first_request_show_up(
    small: tuple[Campaign, httpx.AsyncClient],
) -> None:
    campaign, client = small
    path = campaign.run("alpha").metrics
    write_jsonl(path, [{"step": s, "loss": 1.0} for s in range(1, 6)])
    assert (await get_series(client, "alpha", metric="loss")).points == 5
    append(path, '{"step": 6, "loss": 7.0}\n{"step": 3, "loss": 30.0}\n{"step": 7, "lo')  # torn tail
    answer = await get_series(client, "alpha", metric="loss")
    assert [(b.first_step, b.last) for b in answer.buckets][2:] == [(3, 30.0), (4, 1.0), (5, 1.0), (6, 7.0)]
    append(path, 'ss": 8.0}\n')
    assert (await get_series(client, "alpha", metric="loss")).buckets[-1].last == 8.0
    write_jsonl(path, [{"step": 1, "loss": 0.25}])  # replaced by a shorter file: indexed again
    answer = await get_series(client, "alpha", metric="loss")
    assert [(b.first_step, b.last) for b in answer.buckets] == [(1, 0.25)]


async def test_non_finite_values_are_kept_but_do_not_set_min_max(
    small: tuple[Campaign, httpx.AsyncClient],
) -> None:
    campaign, client = small
    path = campaign.run("alpha").metrics
    values = [1.0, "NaN", 2.0, "Infinity", "NaN", "NaN", 3.0, "NaN"]
    path.write_text("".join(f'{{"step": {i + 1}, "g": {v}}}\n' for i, v in enumerate(values)), encoding="utf-8")
    response = await client.get("/runs/alpha/series", params={"metric": "g", "buckets": 4})
    buckets = [{k: v for k, v in b.items() if k not in NO_TS} for b in response.json()["buckets"]]
    assert {(b["first_ts"], b["last_ts"]) for b in response.json()["buckets"]} == {(None, None)}  # no ts logged
    # The first point alone, then 7 steps in 3 buckets of width 7/3.
    assert buckets[0] == {"first_step": 1, "last_step": 1, "min": 1.0, "max": 1.0, "last": 1.0, "count": 1}
    assert buckets[1] == {"first_step": 2, "last_step": 4, "min": 2.0, "max": 2.0, "last": "Infinity", "count": 3}
    assert buckets[2] == {"first_step": 5, "last_step": 6, "min": "NaN", "max": "NaN", "last": "NaN", "count": 2}
    assert buckets[3] == {"first_step": 7, "last_step": 8, "min": 3.0, "max": 3.0, "last": "NaN", "count": 2}
    one = await client.get("/runs/alpha/series", params={"metric": "g", "start": 4, "end": 4, "buckets": 2})
    assert one.json()["buckets"] == [
        {"first_step": 4, "last_step": 4, "min": "Infinity", "max": "Infinity", "last": "Infinity", "count": 1} | NO_TS
    ]


async def test_buckets_carry_the_wall_time_of_their_first_and_last_lines(
    small: tuple[Campaign, httpx.AsyncClient],
) -> None:
    campaign, client = small
    path = campaign.run("alpha").metrics
    lines: list[dict[str, Any]] = [{"step": s, "ts": 100.0 + s, "loss": 1.0} for s in range(1, 9)]
    lines[3] = {"step": 4, "loss": 1.0}  # a line without ts
    lines[5] = {"step": 6, "ts": "late", "loss": 1.0}  # and one whose ts is not a number
    lines.append({"step": 8, "ts": 500.0, "loss": 2.0})  # a resumed step: its line (and ts) wins
    write_jsonl(path, lines)
    each = (await get_series(client, "alpha", metric="loss")).buckets
    assert [(b.first_ts, b.last_ts) for b in each] == [
        (101.0, 101.0), (102.0, 102.0), (103.0, 103.0), (None, None), (105.0, 105.0), (None, None),
        (107.0, 107.0), (500.0, 500.0),
    ]  # fmt: skip
    four = (await get_series(client, "alpha", metric="loss", buckets=4)).buckets
    assert [(b.first_step, b.last_step, b.first_ts, b.last_ts) for b in four] == [
        (1, 1, 101.0, 101.0), (2, 4, 102.0, None), (5, 6, 105.0, None), (7, 8, 107.0, 500.0),
    ]  # fmt: skip
    append(path, '{"step": 9, "ts": 600.5, "loss": 3.0}\n')
    assert (await get_series(client, "alpha", metric="loss")).buckets[-1].last_ts == 600.5


async def test_series_errors(small: tuple[Campaign, httpx.AsyncClient]) -> None:
    campaign, client = small
    write_jsonl(campaign.run("alpha").metrics, [{"step": 1, "loss": 1.0}])
    unknown = await client.get("/runs/alpha/series", params={"metric": "nope"})
    assert unknown.status_code == 404
    assert "\n" not in unknown.json()["detail"]
    assert "nope" in unknown.json()["detail"]
    bad = await client.get("/runs/alpha/series", params={"metric": "loss", "start": 5, "end": 2})
    assert bad.status_code == 400
    assert "start" in bad.json()["detail"]
    assert (await client.get("/runs/alpha/series", params={"metric": "loss", "buckets": 4001})).status_code == 422
    assert (await client.get("/runs/ghost/series", params={"metric": "loss"})).status_code == 404
    empty = await get_series(client, "alpha", metric="loss", start=50, end=60)
    assert (empty.points, empty.buckets) == (0, [])


# -- the Runs summary -------------------------------------------------------------------------
def bench_rows(campaign: Campaign, run: str, verdicts: dict[str, bool]) -> None:
    rows = [
        {"run": run, "bench": "code", "task_id": task, "passed": ok, "error": None if ok else "AssertionError",
         "score": None, "scores": None, "sample": 0, "latency_ms": 1.0}
        for task, ok in verdicts.items()
    ]  # fmt: skip
    write_jsonl(campaign.root / "bench" / run / "code.jsonl", rows)


async def test_runs_summary_in_one_request(small: tuple[Campaign, httpx.AsyncClient]) -> None:
    campaign, client = small
    alpha, beta = campaign.run("alpha"), campaign.run("beta")
    write_jsonl(
        alpha.metrics,
        [{"step": 10, "loss": 2.0, "eval_loss": 1.5, "eval_runtime": 0.1}, {"step": 20, "loss": 1.0, "eval_loss": 1.2},
         {"step": 20, "eval_loss": 1.4}, {"step": 30, "eval_loss": 1.3}],
    )  # fmt: skip
    write_jsonl(
        alpha.events,
        [{"ts": 1, "event": "started", "max_steps": 30}, {"ts": 2, "event": "alert", "rule": "r"},
         {"ts": 3, "event": "alert", "rule": "r"}, {"ts": 4, "event": "finished", "step": 30}],
    )  # fmt: skip
    write_jsonl(beta.metrics, [{"step": 1, "eval/reverse": 0.2}, {"step": 2, "eval/reverse": 0.7, "eval/b": 9.0}])
    bench_rows(campaign, "alpha", {"T/1": True, "T/2": True, "T/3": False})
    bench_rows(campaign, "beta", {"T/1": True, "T/2": False})
    (campaign.root / "production.json").write_text('{"run": "alpha"}\n', encoding="utf-8")
    job = JobStatus(
        id="20260101-000000-merge-abcdef", kind="merge", run="beta", state="queued", checkpoint=None, suite=None,
        samples=1, submitted=1.0, started=None, ended=None, pid=None, error=None, output=None, result=None,
    )  # fmt: skip
    write_job(campaign, job)
    response = await client.get("/runs/summary")
    assert response.status_code == 200, response.text
    rows = {row.run: row for row in (RunSummary.model_validate(r) for r in response.json())}
    assert list(rows) == ["alpha", "beta"]
    a, b = rows["alpha"], rows["beta"]
    assert (a.state, a.step, a.max_steps, a.pid, a.reason) == ("finished", 30, 30, None, None)
    assert a.last_loss == 1.0
    assert a.alerts == 2
    assert a.production
    assert a.job is None
    assert a.best_eval is not None
    assert (a.best_eval.metric, a.best_eval.value, a.best_eval.step) == (
        "eval_loss",
        1.3,
        30,
    )
    assert a.pass_rates == {"code": pytest.approx(2 / 3)}
    assert a.gate == "passed"
    assert (b.state, b.last_loss, b.alerts, b.production, b.job) == ("created", None, 0, False, "merge")
    assert b.best_eval is not None
    assert (b.best_eval.metric, b.best_eval.value, b.best_eval.step) == (
        "eval/reverse",
        0.7,
        2,
    )
    assert b.gate == "failed"  # anchor T/2 fails
    # Appends after the first request are taken in (the facts follow the files).
    append(alpha.events, json.dumps({"ts": 5, "event": "alert", "rule": "r"}) + "\n")
    append(alpha.metrics, '{"step": 31, "loss": NaN}\n{"step": 32, "eval_loss": 0.5}\n')
    again = {r["run"]: r for r in (await client.get("/runs/summary")).json()}
    assert again["alpha"]["alerts"] == 3
    assert again["alpha"]["last_loss"] == "NaN"
    assert again["alpha"]["best_eval"] == {"metric": "eval_loss", "value": 0.5, "step": 32}


async def test_summary_without_gate_or_bench(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path / "c", ("solo",))
    async for client in client_for(campaign):
        (row,) = (await client.get("/runs/summary")).json()
    assert row == {
        "run": "solo", "state": "created", "step": 0, "max_steps": None, "pid": None, "reason": None,
        "last_loss": None, "best_eval": None, "pass_rates": {}, "gate": None, "alerts": 0, "production": False,
        "job": None,
    }  # fmt: skip


# -- the console ------------------------------------------------------------------------------
async def test_console_tail_and_the_stream_does_not_carry_it(small: tuple[Campaign, httpx.AsyncClient]) -> None:
    campaign, client = small
    log = campaign.run("alpha").worker_log
    log.write_text("".join(f"line {i} {'x' * 40}\n" for i in range(20_000)) + "partial", encoding="utf-8")
    five = await client.get("/runs/alpha/console", params={"tail": 5})
    assert five.status_code == 200
    assert five.headers["content-type"].startswith("text/plain")
    assert five.text.splitlines() == [f"line {i} {'x' * 40}" for i in range(19_996, 20_000)] + ["partial"]
    assert len((await client.get("/runs/alpha/console")).text.splitlines()) == 200
    assert len((await client.get("/runs/alpha/console", params={"tail": 5000})).text.splitlines()) == 5000
    assert (await client.get("/runs/alpha/console", params={"tail": 5001})).status_code == 422
    assert (await client.get("/runs/beta/console")).text == ""  # no log yet
    write_jsonl(campaign.run("alpha").metrics, [{"step": 1, "loss": 1.0}])
    stream = await client.get("/runs/alpha/stream", params={"follow": "false"})
    assert stream.status_code == 200
    assert "loss" in stream.text
    assert "line 1" not in stream.text


def test_worker_log_rotates_at_launch_when_over_the_cap(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    assert not rotate_if_over(log, cap=10)  # none yet
    log.write_bytes(b"0123456789")
    assert not rotate_if_over(log, cap=10)
    assert log.exists()
    log.write_bytes(b"old run output\n")
    assert rotate_if_over(log, cap=10)
    assert not log.exists()
    assert (tmp_path / "worker.log.1").read_bytes() == b"old run output\n"


# -- bench rows and the anchor matrix on sessions/bd6 -----------------------------------------
@pytest.fixture
async def bd6(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(copy_campaign(BD6_SESSION, tmp_path / "bd6")):
        yield client


async def rows_page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/bench/rows", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_bench_rows_of_bd6_8d2_against_production(bd6: httpx.AsyncClient) -> None:
    lost = await rows_page(bd6, candidate="bd6.8d2", klass="lost")
    assert (lost["candidate"], lost["baseline"], lost["total"]) == ("bd6.8d2", "bd6.8d", 2)
    assert sorted(r["task_id"] for r in lost["rows"]) == ["HumanEval/23", "MBPP/53"]
    assert all(r["candidate_passed"] is False and r["baseline_passed"] is True for r in lost["rows"])
    everything = await rows_page(bd6, candidate="bd6.8d2", against="production", limit=1000)
    diff = (await bd6.get("/bench/diff", params={"candidate": "bd6.8d2"})).json()
    assert [f"{r['bench']}:{r['task_id']}" for r in everything["rows"] if r["klass"] == "kept"] == diff["kept"]
    assert everything["total"] == len(everything["rows"]) == sum(len(diff[k]) for k in ("kept", "lost", "gained",
        "still_failing", "only_candidate", "only_baseline"))  # fmt: skip
    assert sorted(r["task_id"] for r in everything["rows"] if r["flaky"]) == ["HumanEval/34", "HumanEval/45"]
    # Paged: the pages put together are the whole list, and total does not depend on the page.
    pages = [await rows_page(bd6, candidate="bd6.8d2", offset=o, limit=4) for o in range(0, everything["total"], 4)]
    assert [r for p in pages for r in p["rows"]] == everything["rows"]
    assert {p["total"] for p in pages} == {19}
    past = await rows_page(bd6, candidate="bd6.8d2", offset=500)
    assert (past["total"], past["rows"]) == (19, [])


async def test_bench_rows_filters_and_sorts(bd6: httpx.AsyncClient) -> None:
    he = await rows_page(bd6, candidate="bd6.8d2", klass="lost,still_failing", bench="humaneval", sort="task_id")
    assert [r["task_id"] for r in he["rows"]] == ["HumanEval/23", "HumanEval/27", "HumanEval/34", "HumanEval/45",
        "HumanEval/85"]  # fmt: skip
    found = await rows_page(bd6, candidate="bd6.8d2", q="mbpp/5")
    assert {r["task_id"] for r in found["rows"]} == {"MBPP/51", "MBPP/52", "MBPP/53"}
    by_error = await rows_page(bd6, candidate="bd6.8d2", q="assertion")
    assert by_error["total"] == 6
    assert all(r["error"] and r["candidate_passed"] is False for r in by_error["rows"])
    by_class = await rows_page(bd6, candidate="bd6.8d2", sort="klass", limit=1000)
    order = ["kept", "lost", "gained", "still_failing", "only_candidate", "only_baseline"]
    ranks = [order.index(r["klass"]) for r in by_class["rows"]]
    assert ranks == sorted(ranks)
    against_pass1 = await rows_page(bd6, candidate="bd6.8d2", against="bd6", klass="lost")
    assert against_pass1["total"] == 6
    bad = await bd6.get("/bench/rows", params={"candidate": "bd6.8d2", "klass": "lossed"})
    assert bad.status_code == 400
    assert "klass" in bad.json()["detail"]
    assert (await bd6.get("/bench/rows", params={"candidate": "nobody"})).status_code == 404


async def test_bench_totals_are_the_diffs_totals_without_its_rows(bd6: httpx.AsyncClient) -> None:
    for params in ({"candidate": "bd6.8d2"}, {"candidate": "bd6.8d2", "against": "bd6"}):
        diff = (await bd6.get("/bench/diff", params=params)).json()
        totals = (await bd6.get("/bench/totals", params=params)).json()
        assert totals == {key: diff[key] for key in ("candidate", "baseline", "baseline_is_production", "p_value",
            "benches", "judged", "steps")}  # fmt: skip
    # Against BD6 pass-1, which passes all 19 anchors: the six the seed lists as lost.
    assert (totals["benches"]["mbpp"]["lost"], totals["benches"]["humaneval"]["lost"]) == (1, 5)
    assert (await bd6.get("/bench/totals", params={"candidate": "nobody"})).status_code == 404


async def test_anchor_matrix_reproduces_the_seed_table(bd6: httpx.AsyncClient) -> None:
    matrix = (await bd6.get("/bench/anchors")).json()
    assert matrix["runs"] == ["bd6", "bd6.5", "bd6.8d", "bd6.8d2"]
    assert len(matrix["rows"]) == 19
    passed = [sum(1 for row in matrix["cells"] if row[col]) for col in range(4)]
    assert passed == [19, 15, 15, 13]
    failing = {
        run: {matrix["rows"][i] for i, row in enumerate(matrix["cells"]) if row[col] is False}
        for col, run in enumerate(matrix["runs"])
    }
    assert failing["bd6.8d2"] == {"MBPP/53", "HumanEval/23", "HumanEval/27", "HumanEval/34", "HumanEval/45",
        "HumanEval/85"}  # fmt: skip
    assert failing["bd6.5"] == {"MBPP/53", "HumanEval/34", "HumanEval/45", "HumanEval/85"}
    some = await bd6.get("/bench/anchors", params={"runs": "bd6.8d2,bd6", "rows": "mbpp:MBPP/53,humaneval:MBPP/53,X/1"})
    assert some.json() == {
        "runs": ["bd6.8d2", "bd6"], "rows": ["mbpp:MBPP/53", "humaneval:MBPP/53", "X/1"],
        "cells": [[False, True], [None, None], [None, None]],
    }  # fmt: skip


async def test_anchor_matrix_needs_anchors_or_rows(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path / "c")
    bench_rows(campaign, "alpha", {"T/1": True})
    async for client in client_for(campaign):
        refused = await client.get("/bench/anchors")
        assert refused.status_code == 400
        assert "rows" in refused.json()["detail"]
        named = (await client.get("/bench/anchors", params={"rows": "T/1"})).json()
    assert named == {"runs": ["alpha"], "rows": ["T/1"], "cells": [[True]]}
