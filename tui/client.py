"""The TUI's one way to the engine: one ``httpx.AsyncClient`` for the app's life, typed calls, one SSE consumer.

The only module of the TUI that imports httpx. Answers come back as the engine's own pydantic
models (``engine.api``); every failure becomes an ``EngineCallError`` whose message says what to
do. The engine is found on the campaign's Unix socket (or at a TCP URL with a bearer token) and
started as a subprocess, exactly as the CLI does, when nothing answers there — without importing
the CLI or the service. Closing the client never stops the engine or a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from httpx_sse import SSEError, aconnect_sse
from pydantic import BaseModel, ValidationError
from textual.message import Message

from engine.api import (
    AnchorMatrix,
    BenchDiff,
    BenchRowsPage,
    BenchShowWithWarnings,
    DecideRequest,
    DecisionWalk,
    DiffTotals,
    GateResult,
    GpuStatus,
    Health,
    JobRequest,
    JobStatus,
    MetricNames,
    MetricSeries,
    NewRunRequest,
    NextRun,
    NextRunRequest,
    ProductionState,
    PromoteRequest,
    RegistryHistory,
    RegistryResult,
    RevertRequest,
    RunOverview,
    RunStatus,
    RunSummary,
    StartRequest,
    StopRequest,
    WatchReport,
)
from engine.errors import TunedeckError
from engine.store.campaign import engine_paths, ensure_private_dir
from tui.messages import AlertRaised, EngineConnection, MetricPoints, RunEvent, SystemSample

START_TIMEOUT_S = 20.0
CALL_TIMEOUT = httpx.Timeout(10.0, connect=2.0)
# The engine pings an idle stream every 15 s: three missed pings mean the connection is dead.
STREAM_TIMEOUT = httpx.Timeout(10.0, connect=2.0, read=45.0)
RETRY_S = (1.0, 2.0, 4.0, 5.0)  # waits between reconnection attempts, the last one repeated
BATCH_MAX = 5000  # stream lines turned into messages at once
# A run's first series or metric-names request makes the engine index its metrics.jsonl: ~7-15 s for
# 1,000,000 lines on a busy 2-core machine, past CALL_TIMEOUT. Later requests answer in milliseconds.
INDEX_TIMEOUT_S = 60.0
REGISTRY_TIMEOUT_S = 120.0  # promote / revert: the lock wait (60 s) and the artifact's hashing
M = TypeVar("M", bound=BaseModel)


class EngineCallError(TunedeckError):
    """A call to the engine failed; the message says what happened and what to try."""


class EngineUnreachable(EngineCallError):
    """Nothing answers where the engine should be (not started, just died, or a wrong address)."""


class EndpointMissing(EngineCallError):
    """This engine does not serve that endpoint (an older engine): the screen falls back."""


@dataclass(frozen=True)
class EngineTarget:
    """Where the engine is: a campaign's Unix socket, or a TCP URL with a bearer token."""

    campaign: Path | None = None
    url: str | None = None
    token: str | None = None
    transport: httpx.AsyncBaseTransport | None = None  # tests: httpx.ASGITransport(app=create_app(...))
    autostart: bool = True  # start the campaign's engine when nothing answers on its socket

    @property
    def socket(self) -> Path | None:
        """The campaign's engine socket (None for a TCP target)."""
        return engine_paths(self.campaign).socket if self.campaign is not None and self.url is None else None

    def describe(self) -> str:
        """The address, as a person would recognise it."""
        if self.transport is not None:
            return "the in-process engine"
        return self.url or str(self.socket)


def read_token(path: Path) -> str:
    """The bearer token in ``path`` (the engine's ``.tunedeck/token``), as one clear error if unreadable."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise EngineCallError(f"cannot read the token file: {exc.strerror}", path=path) from None
    if not token:
        raise EngineCallError("the token file is empty", path=path)
    return token


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text
    return detail if isinstance(detail, str) else json.dumps(detail)


def _spawn_engine(campaign: Path) -> int:
    """Start ``python -P -m engine.service CAMPAIGN`` in a session of its own (it outlives the TUI)."""
    paths = engine_paths(campaign)
    ensure_private_dir(paths.root)
    with open(paths.log, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-P", "-m", "engine.service", str(campaign)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=campaign,
        )
    return process.pid


def _log_tail(campaign: Path) -> str:
    try:
        lines = engine_paths(campaign).log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no engine log)"
    return lines[-1] if lines else "(no output)"


class EngineClient:
    """Typed async calls to one engine; ``await client.aclose()`` when the app ends (the engine stays)."""

    def __init__(self, target: EngineTarget) -> None:
        self.target = target
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        transport = target.transport
        if transport is None and target.socket is not None:
            transport = httpx.AsyncHTTPTransport(uds=str(target.socket))
        self.http = httpx.AsyncClient(
            transport=transport, base_url=target.url or "http://engine", headers=headers, timeout=CALL_TIMEOUT
        )
        self.last_event_id: str | None = None  # the campaign stream's cursor, kept across reconnects
        self.follow = True  # False: read the stream once and stop (tests under ASGITransport)
        self.since_end = True  # first connection: lines written from now on only (False: replay the files)

    async def aclose(self) -> None:
        """Close the connection; the engine and its runs go on."""
        await self.http.aclose()

    # -- plumbing ------------------------------------------------------------------------
    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One call; transport failures, timeouts and 4xx/5xx become ``EngineCallError``s."""
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise EngineCallError(f"the engine did not answer {method} {url} in time (busy?); try again") from None
        except (httpx.TransportError, OSError) as exc:
            raise EngineUnreachable(
                f"cannot reach the engine at {self.target.describe()} ({exc or type(exc).__name__})"
            ) from None
        if response.status_code in (404, 405) and _detail(response) in ("Not Found", "Method Not Allowed"):
            raise EndpointMissing(f"this engine has no {method} {url.split('?')[0]}: upgrade it")
        if response.status_code == 401:
            raise EngineCallError("the engine refused the bearer token: check --token-file")
        if response.status_code >= 400:
            raise EngineCallError(_detail(response))
        return response

    async def _model(self, model: type[M], method: str, url: str, **kwargs: Any) -> M:
        response = await self.request(method, url, **kwargs)
        try:
            return model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise EngineCallError(f"unexpected answer from {url}: {str(exc).splitlines()[0]}") from None

    async def _models(self, model: type[M], url: str, **kwargs: Any) -> list[M]:
        response = await self.request("GET", url, **kwargs)
        try:
            return [model.model_validate(item) for item in response.json()]
        except (ValueError, ValidationError, TypeError) as exc:
            raise EngineCallError(f"unexpected answer from {url}: {str(exc).splitlines()[0]}") from None

    # -- lifecycle -----------------------------------------------------------------------
    async def health(self) -> Health:
        """The engine's /health (short timeout: it answers at once or not at all)."""
        return await self._model(Health, "GET", "/health", timeout=2.0)

    async def ensure_engine(self) -> str | None:
        """Make sure an engine answers; returns what was done ("started the engine ...") or None."""
        try:
            await self.health()
            return None
        except EngineUnreachable:
            campaign = self.target.campaign
            if not self.target.autostart or campaign is None or self.target.url or self.target.transport:
                raise
        pid = await asyncio.to_thread(_spawn_engine, campaign)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            try:
                await self.health()
            except EngineUnreachable:
                continue
            return f"started the engine for {campaign.name} (pid {pid})"
        raise EngineUnreachable(f"the engine did not start within {START_TIMEOUT_S:.0f} s: {_log_tail(campaign)}")

    # -- runs ----------------------------------------------------------------------------
    async def runs(self) -> list[RunStatus]:
        """Every run's state (``GET /runs``)."""
        return await self._models(RunStatus, "/runs")

    async def runs_summary(self) -> list[RunSummary]:
        """One row per run for the Runs table (``GET /runs/summary``)."""
        try:
            return await self._models(RunSummary, "/runs/summary")
        except EngineCallError as exc:
            # An engine without the route reads "summary" as a run name and answers 404/422.
            if isinstance(exc, EndpointMissing) or "summary" in str(exc):
                raise EndpointMissing("this engine has no GET /runs/summary") from None
            raise

    async def stop(self, run: str, reason: str = "stopped from the TUI") -> RunStatus:
        """Ask a run to checkpoint and stop."""
        body = StopRequest(reason=reason).model_dump()
        return await self._model(RunStatus, "POST", f"/runs/{run}/stop", json=body)

    async def start(self, run: str) -> RunStatus:
        """Queue a run that never ran (its runs/<run>/run.toml is in place)."""
        body = StartRequest(resume=False).model_dump()
        return await self._model(RunStatus, "POST", f"/runs/{run}/start", json=body)

    async def new_run(self, run_toml: str) -> RunStatus:
        """Place a run.toml (a path inside the campaign) at runs/<run>/ and queue it."""
        body = NewRunRequest(run_toml=run_toml).model_dump()
        return await self._model(RunStatus, "POST", "/runs", json=body, timeout=60.0)

    async def resume(self, run: str) -> RunStatus:
        """Queue a run's resume from its newest complete checkpoint."""
        body = StartRequest(resume=True).model_dump()
        return await self._model(RunStatus, "POST", f"/runs/{run}/start", json=body)

    async def merge(self, run: str) -> JobStatus:
        """Queue a merge of a run's final adapter (a job in the engine's queue)."""
        body = JobRequest(kind="merge", run=run).model_dump()
        return await self._model(JobStatus, "POST", "/jobs", json=body)

    async def alerts(self, run: str) -> WatchReport:
        """The watch rules that fired on a run."""
        return await self._model(WatchReport, "GET", f"/runs/{run}/alerts")

    async def gpu(self) -> GpuStatus:
        """Whether the engine reads GPU statistics (and why not), with the newest sample."""
        return await self._model(GpuStatus, "GET", "/gpu")

    # -- metrics -------------------------------------------------------------------------
    async def series(
        self, run: str, metric: str, *, start: int | None = None, end: int | None = None, buckets: int = 400
    ) -> MetricSeries:
        """A metric's history decimated by the engine (min / max / last per bucket)."""
        params: dict[str, str | int] = {"metric": metric, "buckets": buckets}
        params |= {k: v for k, v in (("start", start), ("end", end)) if v is not None}
        return await self._model(MetricSeries, "GET", f"/runs/{run}/series", params=params, timeout=INDEX_TIMEOUT_S)

    async def metric_names(self, run: str) -> MetricNames:
        """Every metric a run logged, with its latest value."""
        return await self._model(MetricNames, "GET", f"/runs/{run}/metric-names", timeout=INDEX_TIMEOUT_S)

    async def metrics(self, run: str) -> list[dict[str, Any]]:
        """The run's whole metrics.jsonl (the fallback when the engine has no series endpoint)."""
        response = await self.request("GET", f"/runs/{run}/metrics", timeout=60.0)
        records = []
        for line in response.text.splitlines():
            try:  # json accepts the bare NaN HF logs
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    async def console(self, run: str, tail: int = 200) -> str:
        """The last lines of a run's worker output."""
        return (await self.request("GET", f"/runs/{run}/console", params={"tail": tail})).text

    async def overview(self, run: str) -> RunOverview:
        """A run's resolved config, its differences from production's, and its figures."""
        return await self._model(RunOverview, "GET", f"/runs/{run}/overview")

    # -- bench (the Compare screen's) ------------------------------------------------------
    async def bench_rows(self, candidate: str, **filters: str | int) -> BenchRowsPage:
        """One page of a candidate's diff rows against production (or ``against=``)."""
        return await self._model(BenchRowsPage, "GET", "/bench/rows", params={"candidate": candidate, **filters})

    async def anchors(self, runs: list[str], rows: list[str] | None = None) -> AnchorMatrix:
        """The gate's anchors (or ``rows``) down, runs across (``[]``: every run with bench results)."""
        params = {"runs": ",".join(runs)} | ({"rows": ",".join(rows)} if rows else {})
        return await self._model(AnchorMatrix, "GET", "/bench/anchors", params=params)

    async def bench_totals(self, candidate: str, against: str | None = None) -> DiffTotals:
        """A diff's per-bench counts and McNemar p-value, without its rows (``GET /bench/totals``)."""
        params = {"candidate": candidate} | ({"against": against} if against else {})
        return await self._model(DiffTotals, "GET", "/bench/totals", params=params)

    async def bench_diff(self, candidate: str, against: str | None = None) -> BenchDiff:
        """The whole diff, every row key listed (an engine without ``/bench/totals`` answers only this)."""
        params = {"candidate": candidate} | ({"against": against} if against else {})
        return await self._model(BenchDiff, "GET", "/bench/diff", params=params, timeout=60.0)

    async def gate(self, run: str) -> GateResult:
        """campaign.toml's [gate] applied to ``run``: passed or not, and why."""
        return await self._model(GateResult, "GET", f"/bench/gate/{run}")

    async def bench_show(self, runs: list[str] | None = None) -> BenchShowWithWarnings:
        """Pass rates per run and bench (every run with results when ``runs`` is None)."""
        return await self._model(BenchShowWithWarnings, "GET", "/bench", params={"run": runs or []})

    # -- registry (the Registry screen's) ---------------------------------------------------
    async def production(self) -> ProductionState:
        """production.json, and whether it agrees with registry.jsonl."""
        return await self._model(ProductionState, "GET", "/production")

    async def registry_history(self) -> RegistryHistory:
        """The promote / revert log (oldest first) with production."""
        return await self._model(RegistryHistory, "GET", "/registry")

    async def promote(
        self, run: str, *, artifact: str = "merged", reason: str | None = None, force: bool = False,
        dry_run: bool = False,
    ) -> RegistryResult:  # fmt: skip
        """Promote a run; a refusal (the gate, the artifact) comes back as ``done = false``, not an error."""
        body = PromoteRequest.model_validate(
            {"run": run, "artifact": artifact, "reason": reason, "force": force, "dry_run": dry_run}
        ).model_dump()
        # The engine may wait for the registry lock and hash a large model: more than a plain call's time.
        return await self._model(RegistryResult, "POST", "/registry/promote", json=body, timeout=REGISTRY_TIMEOUT_S)

    async def revert(self, *, reason: str | None = None, dry_run: bool = False) -> RegistryResult:
        """Undo the latest promote not yet undone (``done = false`` with the reason when there is none)."""
        body = RevertRequest(reason=reason, dry_run=dry_run).model_dump()
        return await self._model(RegistryResult, "POST", "/registry/revert", json=body, timeout=REGISTRY_TIMEOUT_S)

    # -- decisions (the Decide screen's) ----------------------------------------------------
    async def decide(self, run: str, answers: dict[str, str]) -> DecisionWalk:
        """Walk the campaign's tree on ``run`` with these answers (the engine saves the walk)."""
        body = DecideRequest(answers=answers, replay=None).model_dump()
        return await self._model(DecisionWalk, "POST", f"/runs/{run}/decide", json=body, timeout=60.0)

    async def next_run_from_decision(self, run: str, new_run: str) -> NextRun:
        """runs/<new_run>/run.toml from the latest walk's config patch (the engine refuses to overwrite)."""
        body = NextRunRequest(new_run=new_run).model_dump()
        return await self._model(NextRun, "POST", f"/runs/{run}/from-decision", json=body)

    # -- the campaign stream ---------------------------------------------------------------
    async def consume_stream(self, post: Callable[[Message], object]) -> None:
        """Follow ``GET /stream`` for the app's life, posting messages; reconnect with Last-Event-ID.

        The event ids are cursors into the files, so a reconnection (after the engine restarted,
        say) resumes exactly where the last one stopped. Never raises: a failure is posted as
        ``EngineConnection(connected=False, retry_in=...)`` and retried.
        """
        failures = 0
        while True:
            try:
                if failures and self.target.autostart:
                    note = await self.ensure_engine()
                    if note:
                        post(EngineConnection(True, note))
                await self._read_stream(post)
                failures = 0
                if not self.follow:
                    return
                detail = "the engine closed the stream"
            except (EngineCallError, httpx.HTTPError, SSEError, OSError) as exc:
                detail = str(exc) or type(exc).__name__
            wait = RETRY_S[min(failures, len(RETRY_S) - 1)]
            failures += 1
            post(EngineConnection(False, detail, retry_in=wait))
            await asyncio.sleep(wait)

    async def _read_stream(self, post: Callable[[Message], object]) -> None:
        headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
        params = {} if self.follow else {"follow": "false"}
        if not self.last_event_id and self.since_end:
            params["since"] = "end"  # history comes from /series; the stream brings only what is new
        try:
            async with aconnect_sse(
                self.http, "GET", "/stream", headers=headers, params=params, timeout=STREAM_TIMEOUT
            ) as source:
                if source.response.status_code != 200:
                    raise EngineCallError(f"the stream answered {source.response.status_code}")
                post(EngineConnection(True))
                # A reader task fills a queue while this loop drains whatever has arrived: lines
                # that came in one read become one batch of messages, not one message per line.
                queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=BATCH_MAX * 2)
                reader = asyncio.create_task(_pump(source.aiter_sse(), queue))
                try:
                    while (item := await queue.get()) is not _END:
                        batch = [item]
                        while not queue.empty() and len(batch) < BATCH_MAX:
                            batch.append(queue.get_nowait())
                        self._post_batch([b for b in batch if b is not _END], post)
                        if _END in batch:
                            break
                finally:
                    reader.cancel()
                if reader.done() and not reader.cancelled():
                    await reader  # the stream's own failure (a lost connection), if it had one
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise EngineUnreachable(f"lost the engine at {self.target.describe()} ({reason})") from None

    def _post_batch(self, batch: list[Any], post: Callable[[Message], object]) -> None:
        metrics: dict[str, list[dict[str, Any]]] = {}
        for sse in batch:
            try:
                wrapped = json.loads(sse.data)
                run, record = wrapped["run"], wrapped["data"]
            except (ValueError, KeyError, TypeError):
                continue
            if sse.id:
                self.last_event_id = sse.id
            if sse.event == "metric":
                metrics.setdefault(run, []).append(record)
            elif sse.event == "system":
                post(SystemSample(run, record))
            elif sse.event == "alert":
                post(AlertRaised(run, record))
            elif sse.event == "event":
                post(RunEvent(run, record))
        for run, records in metrics.items():
            post(MetricPoints(run, records))


_END = object()


async def _pump(events: Any, queue: asyncio.Queue[Any]) -> None:
    """Copy SSE events into ``queue``, then the end marker (also when the stream fails)."""
    try:
        async for sse in events:
            await queue.put(sse)
    finally:
        await queue.put(_END)


def default_token_file(campaign: Path | None) -> Path | None:
    """The campaign's own token file, when it has one."""
    if campaign is None:
        return None
    path = engine_paths(campaign).token
    return path if os.path.exists(path) else None
