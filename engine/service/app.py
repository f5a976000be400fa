"""The HTTP API of the engine service (FastAPI): runs, jobs, history, live streams, GPU.

History endpoints answer JSON Lines exactly as the files hold them (bare NaN included, as
HF logs it); everything else is JSON. Errors a client can cause answer 4xx with a one-line
``detail`` that names file, line and field as the CLI would.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from engine.api import GpuStatus, Health, NewRunRequest, Ok, RunStatus, StartRequest, StopRequest, WatchReport
from engine.errors import ConflictError, NotFoundError, TunedeckError
from engine.runs.placement import place_run, run_toml_inside
from engine.runs.watch import watch_report
from engine.service.bench_routes import add_bench_routes
from engine.service.core import EngineCore
from engine.service.decide_routes import add_decide_routes
from engine.service.job_routes import add_job_routes
from engine.service.monitor_routes import add_monitor_routes
from engine.service.overview_routes import add_overview_routes
from engine.service.registry_routes import add_registry_routes
from engine.service.run_summary import RunSummaries
from engine.service.stream import (
    end_cursor,
    format_campaign_cursor,
    format_run_cursor,
    parse_campaign_cursor,
    parse_run_cursor,
    read_new_lines,
)
from engine.store.campaign import Campaign
from engine.store.jsonl import dumps_line, read_jsonl
from engine.store.metrics import read_metrics

JSONL = "application/x-ndjson"
KEEPALIVE_S = 15.0


def create_app(campaign: Campaign, *, core: EngineCore | None = None, token: str | None = None) -> FastAPI:
    """The service's app. Without ``core`` it makes and runs its own (handy in tests)."""
    owns_core = core is None
    engine = core or EngineCore(campaign)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owns_core:
            await engine.start()
        try:
            yield
        finally:
            if owns_core:
                await engine.close()

    # No /docs or /redoc: those pages load their scripts from a CDN, and the engine runs offline.
    # The schema itself is served at /openapi.json.
    app = FastAPI(title="tunedeck engine", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.engine = engine
    app.state.shutdown = asyncio.Event()
    _install_auth(app, token)
    _install_errors(app)
    # One RunSummaries for the Runs table and the overview: each run's files are followed once.
    summaries = RunSummaries(campaign)
    add_monitor_routes(app, engine.supervisor, summaries)  # first: /runs/summary before /runs/{run}
    _add_run_routes(app, engine)
    add_job_routes(app, engine.supervisor)
    _add_stream_routes(app, engine)
    add_bench_routes(app, campaign)
    add_decide_routes(app, campaign)
    add_registry_routes(app, campaign)
    add_overview_routes(app, campaign, summaries)

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health(ok=True, pid=os.getpid(), campaign=str(campaign.root), uptime_s=_uptime(engine))

    @app.get("/gpu", response_model=GpuStatus)
    def gpu() -> GpuStatus:
        return GpuStatus(**engine.gpu.describe(), last=engine.last_gpu_sample)

    @app.post("/shutdown", response_model=Ok)
    async def shutdown() -> Ok:  # async: the Event is set on the loop, not from a thread
        app.state.shutdown.set()
        engine.hub.wake()  # open streams see the shutdown now, not at their next keep-alive
        return Ok(ok=True)

    return app


def _uptime(engine: EngineCore) -> float:
    return round(time.time() - engine.started_at, 3)


def _install_auth(app: FastAPI, token: str | None) -> None:
    if token is None:
        return
    expected = f"Bearer {token}".encode()

    @app.middleware("http")
    async def require_token(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401)
        return await call_next(request)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(TunedeckError)
    async def user_error(request: Request, exc: TunedeckError) -> JSONResponse:
        status = 404 if isinstance(exc, NotFoundError) else 409 if isinstance(exc, ConflictError) else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)


def _jsonl(records: list[dict[str, Any]]) -> Response:
    return Response("".join(dumps_line(r) for r in records), media_type=JSONL)


def _add_run_routes(app: FastAPI, engine: EngineCore) -> None:
    supervisor, campaign = engine.supervisor, engine.campaign

    # Routes that read or change the supervisor are async: they run on the event loop, the one
    # place its queue and active jobs change (a sync route would run in FastAPI's threadpool).
    @app.get("/runs", response_model=list[RunStatus])
    async def runs() -> list[RunStatus]:
        return supervisor.statuses()

    @app.get("/runs/{run}", response_model=RunStatus)
    def run_status(run: str) -> RunStatus:
        return supervisor.status(run)

    @app.post("/runs", response_model=RunStatus)
    async def new_run(request: NewRunRequest) -> RunStatus:
        source = run_toml_inside(campaign, request.run_toml)
        prepared = await asyncio.to_thread(place_run, campaign, source)
        return await supervisor.submit(prepared.name)

    @app.post("/runs/{run}/start", response_model=RunStatus)
    async def start(run: str, request: Annotated[StartRequest | None, Body()] = None) -> RunStatus:
        asked = request or StartRequest()
        return await supervisor.submit(run, resume=asked.resume, extend=asked.extend)

    @app.post("/runs/{run}/stop", response_model=RunStatus)
    async def stop(run: str, request: Annotated[StopRequest | None, Body()] = None) -> RunStatus:
        reason = (request.reason if request else None) or "stopped by user"
        return supervisor.stop(run, reason=reason)

    @app.get("/runs/{run}/metrics", response_class=Response, responses={200: {"content": {JSONL: {}}}})
    def metrics(run: str) -> Response:
        supervisor.status(run)
        return _jsonl(read_metrics(campaign.run(run).metrics))

    @app.get("/runs/{run}/events", response_class=Response, responses={200: {"content": {JSONL: {}}}})
    def events(run: str) -> Response:
        supervisor.status(run)
        return _jsonl(read_jsonl(campaign.run(run).events, strict=False))

    @app.get("/runs/{run}/system", response_class=Response, responses={200: {"content": {JSONL: {}}}})
    def system(run: str) -> Response:
        supervisor.status(run)
        return _jsonl(read_jsonl(campaign.run(run).system, strict=False))

    @app.get("/runs/{run}/alerts", response_model=WatchReport)
    def alerts(run: str) -> WatchReport:
        return watch_report(campaign, run)


def _add_stream_routes(app: FastAPI, engine: EngineCore) -> None:
    campaign = engine.campaign

    @app.get("/runs/{run}/stream", response_class=EventSourceResponse, dependencies=[Depends(_known_run)])
    async def run_stream(
        run: str,
        request: Request,
        follow: Annotated[bool, Query(description="keep the stream open for new lines")] = True,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        paths = campaign.run(run)
        cursor = parse_run_cursor(last_event_id)

        def new_events() -> Iterator[ServerSentEvent]:
            nonlocal cursor
            for line in read_new_lines(paths, cursor):
                cursor = line.cursor
                yield ServerSentEvent(raw_data=line.text, event=line.kind, id=format_run_cursor(cursor))

        async for event in _follow(engine, request, follow, new_events):
            yield event

    @app.get("/stream", response_class=EventSourceResponse)
    async def campaign_stream(
        request: Request,
        follow: Annotated[bool, Query(description="keep the stream open for new lines")] = True,
        since: Annotated[
            Literal["start", "end"],
            Query(description="with no Last-Event-ID: every line on disk (start), or only new lines (end)"),
        ] = "start",
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        cursors = parse_campaign_cursor(last_event_id)
        if last_event_id is None and since == "end":
            # A client that loads history through /series needs only what comes next: a 1M-step run
            # is not replayed line by line (100 MB) to every app that connects.
            cursors = {run: end_cursor(campaign.run(run)) for run in campaign.run_names()}

        def new_events() -> Iterator[ServerSentEvent]:
            for run in campaign.run_names():
                for line in read_new_lines(campaign.run(run), cursors.get(run, (0, 0, 0))):
                    cursors[run] = line.cursor
                    # The line stays as written (bare NaN included), wrapped with its run's name.
                    data = f'{{"run":"{run}","data":{line.text}}}'
                    yield ServerSentEvent(raw_data=data, event=line.kind, id=format_campaign_cursor(cursors))

        async for event in _follow(engine, request, follow, new_events):
            yield event


async def _follow(
    engine: EngineCore, request: Request, follow: bool, new_events: Callable[[], Iterator[ServerSentEvent]]
) -> AsyncIterator[ServerSentEvent]:
    """Send what is new, then (when following) wait for the files to grow and send again."""
    wake = engine.hub.subscribe()
    try:
        while True:
            sent = False
            for event in new_events():
                sent = True
                yield event
            if not sent and (not follow or await _wait(wake, request)):
                return
    finally:
        engine.hub.unsubscribe(wake)


def _known_run(run: str, request: Request) -> None:
    """Refuse an unknown or invalid run before a stream's 200 goes out (a generator cannot)."""
    request.app.state.engine.supervisor.status(run)


async def _wait(wake: asyncio.Queue[None], request: Request) -> bool:
    """Wait for new lines; True when the client has gone away or the engine is shutting down."""
    with suppress(TimeoutError):
        await asyncio.wait_for(wake.get(), timeout=KEEPALIVE_S)
    return request.app.state.shutdown.is_set() or await request.is_disconnected()
