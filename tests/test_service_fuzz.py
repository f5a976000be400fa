"""Schema-driven fuzzing of the engine service: no request may make it answer 5xx.

Schemathesis reads the app's own ``/openapi.json`` and sends requests generated from it (valid
ones and deliberately invalid ones) to the app in process (ASGI, lifespan included, so the
engine core runs as it does when served). The campaign holds two runs on disk: ``alpha``
finished, with a bare ``NaN`` in its metrics (a whole ``NaN`` line too) that a watch rule reads,
and ``beta`` never started. Generated run names are swapped for these real ones a third of the
time so the handlers get past the 404. The campaign's base model folder does not exist, so
``POST /runs/{run}/start`` is refused as bad config (400) and nothing ever trains.

Left out of the generated calls: ``POST /shutdown`` and the SSE streams (an ASGI call buffers the
whole response, so a ``follow=true`` stream would never return); the streams get finite
``follow=false`` requests below, with arbitrary ``Last-Event-ID`` headers.

Only ``not_a_server_error`` is checked. The description is known to be loose in ways that are not
5xx: 400/404/409 answers are not declared, and ``run`` is declared as any string although names
are restricted (schemathesis reports those as ST103 / ST202 when all its checks are on).
``TUNEDECK_FUZZ_EXAMPLES=500`` runs a deeper search locally.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from httpx_sse import aconnect_sse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.checks import not_a_server_error

from engine.service.app import create_app
from engine.store.campaign import Campaign
from tests.helpers import write_jsonl

# Hypothesis' caches go to /tmp, not a .hypothesis/ folder in the repository (which pytest would
# warn about, since pyproject's norecursedirs replaces pytest's default ignores).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "tunedeck-hypothesis")
EXAMPLES = int(os.environ.get("TUNEDECK_FUZZ_EXAMPLES", "25"))
RUNS = ("alpha", "beta")
RUN_TOML = 'dataset = "datasets/train.jsonl"\n'
WATCH = '\n[[watch]]\nname = "loss-up"\nmetric = "loss"\nabove = 5.0\naction = "warn"\n'
ROWS = [{"prompt": f"reverse: {word}", "completion": word[::-1]} for word in ("abc", "tune", "deck", "fuzz")]
METRICS = '{"step":1,"loss":2.5}\n{"step":2,"loss":NaN,"grad_norm":NaN}\nNaN\n{"step":3,"loss":9.0}\n'
EVENTS = '{"ts":1.0,"event":"started","max_steps":3}\n{"ts":2.0,"event":"finished","step":3}\n'


def make_campaign() -> Campaign:
    """Two runs on disk; the base model folder is missing, so every start is refused before launching."""
    root = Path(tempfile.mkdtemp(prefix="td-fuzz-", dir="/tmp"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # also when this module's tests are deselected
    campaign = Campaign.create(root / "c", "fuzz", base="models/missing")
    toml = campaign.root / "campaign.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + WATCH, encoding="utf-8")
    write_jsonl(campaign.root / "datasets" / "train.jsonl", ROWS)
    for name in RUNS:
        campaign.run(name).root.mkdir(parents=True)
        campaign.run(name).run_toml.write_text(RUN_TOML, encoding="utf-8")
    campaign.run("alpha").metrics.write_text(METRICS, encoding="utf-8")
    campaign.run("alpha").events.write_text(EVENTS, encoding="utf-8")
    return Campaign.open(campaign.root)  # re-read: the watch rule is in the config


CAMPAIGN = make_campaign()
schema = (
    schemathesis.openapi.from_asgi("/openapi.json", create_app(CAMPAIGN))
    .exclude(path_regex=r"stream$")
    .exclude(path="/shutdown")
)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    """Keep the generated run name, or use one of the campaign's real runs."""
    if not path_parameters or "run" not in path_parameters:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, *({**path_parameters, "run": run} for run in RUNS)])


@pytest.fixture(scope="module", autouse=True)
def _remove_campaign() -> Iterator[None]:
    yield
    shutil.rmtree(CAMPAIGN.root.parent, ignore_errors=True)


def snapshot() -> dict[str, bytes]:
    """Every file of the runs, to show that no request wrote anything (no queued event, no worker)."""
    return {str(p): p.read_bytes() for p in sorted(CAMPAIGN.runs_dir.rglob("*")) if p.is_file()}


BEFORE = snapshot()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: schemathesis.Case) -> None:
    response = case.call_and_validate(checks=[not_a_server_error])
    if case.operation.path == "/runs/{run}/start":
        assert response.status_code >= 400, f"a run was queued: {response.text}"


def test_start_is_refused_as_bad_config_and_launches_nothing() -> None:
    """What the fuzzer's start calls get: 400 naming the missing model folder, nothing written."""
    operation = schema["/runs/{run}/start"]["POST"]
    for run in RUNS:
        bodies: list[Any] = [None, {"resume": False}, {"resume": True}]
        for body in bodies:
            case = operation.Case(path_parameters={"run": run}, body=body, media_type="application/json")
            response = case.call()
            assert response.status_code == 400, response.text
            assert "no config.json" in response.json()["detail"]
    assert snapshot() == BEFORE
    assert not list(CAMPAIGN.runs_dir.glob("*/worker.log"))


# -- the SSE streams, finite (follow=false) under httpx.ASGITransport ----------------------


async def read_stream(url: str, last_event_id: str | None = None) -> tuple[httpx.Response, list[Any]]:
    """The whole of a ``follow=false`` stream: its response and its events."""
    app = create_app(CAMPAIGN)  # no lifespan under ASGITransport: the core is not started, none is needed
    headers = {"Last-Event-ID": last_event_id.encode("latin-1")} if last_event_id is not None else {}
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://engine", timeout=10) as http,
        aconnect_sse(http, "GET", url, params={"follow": "false"}, headers=headers) as source,
    ):
        if source.response.status_code != 200:
            await source.response.aread()
            return source.response, []
        return source.response, [event async for event in source.aiter_sse()]


async def test_run_stream_replays_the_files_and_resumes() -> None:
    response, events = await read_stream("/runs/alpha/stream")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert [e.event for e in events] == ["metric"] * 3 + ["event"] * 2
    # Each object line as written (bare NaN inside it kept); the bare `NaN` line is no object,
    # skipped here as every reader skips it, and its bytes still count in the cursor.
    assert [e.data for e in events[:3]] == [line for line in METRICS.splitlines() if line.startswith("{")]
    metrics_size = len(METRICS.encode())
    assert events[-1].id == f"{metrics_size}.0.{len(EVENTS.encode())}"

    response, events = await read_stream("/runs/alpha/stream", last_event_id=events[-1].id)
    assert response.status_code == 200
    assert events == []  # caught up: nothing twice

    response, events = await read_stream("/runs/beta/stream")
    assert response.status_code == 200
    assert events == []


async def test_campaign_stream_wraps_lines_with_their_run() -> None:
    response, events = await read_stream("/stream")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert len(events) == 5
    assert all(e.data.startswith('{"run":"alpha","data":{') for e in events)
    assert math.isnan(json.loads(events[1].data)["data"]["loss"])
    assert json.loads(events[-1].data)["data"]["event"] == "finished"


@pytest.mark.parametrize(("url", "status"), [("/runs/nope/stream", 404), ("/runs/..x/stream", 400)])
async def test_stream_of_a_missing_or_bad_run_is_a_client_error(url: str, status: int) -> None:
    response, _ = await read_stream(url)
    assert response.status_code == status


OFFSET = st.integers(-(2**70), 2**70) | st.integers(0, len(METRICS))
RUN_CURSOR = st.builds("{}.{}.{}".format, OFFSET, OFFSET, OFFSET)
CAMPAIGN_CURSOR = st.lists(
    st.builds("{}:{}".format, st.sampled_from([*RUNS, "nope", "", "../x"]), RUN_CURSOR), max_size=3
).map("|".join)
ANY_TEXT = st.text(st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=40)


@given(
    last_event_id=ANY_TEXT | RUN_CURSOR | CAMPAIGN_CURSOR,
    url=st.sampled_from(["/runs/alpha/stream", "/stream"]),
)
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_any_last_event_id_is_accepted(last_event_id: str, url: str) -> None:
    """A cursor the service cannot read restarts the stream; it never fails it."""
    response, events = asyncio.run(read_stream(url, last_event_id=last_event_id.strip()))
    assert response.status_code == 200
    assert len(events) <= 6


async def test_a_tail_torn_inside_a_utf8_character_is_tolerated() -> None:
    """A crash (or a full disk) can cut a line anywhere, inside a character too: readers skip that tail."""
    root = Path(tempfile.mkdtemp(prefix="td-fuzz-", dir="/tmp"))
    try:
        campaign = Campaign.create(root / "c", "torn")
        run = campaign.run("torn")
        run.root.mkdir(parents=True)
        run.run_toml.write_text(RUN_TOML, encoding="utf-8")
        run.metrics.write_bytes(b'{"step":1,"loss":1.0}\n{"step":2,"note":"\xc3')  # half of a 2-byte character
        run.events.write_bytes(b'{"ts":1.0,"event":"started"}\n{"ts":2.0,"event":"note","text":"\xe2\x82')
        transport = httpx.ASGITransport(app=create_app(campaign), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://engine") as http:
            for url in ("/runs", "/runs/torn", "/runs/torn/metrics", "/runs/torn/events", "/runs/torn/alerts"):
                response = await http.get(url)
                assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
