"""``GET /stream?since=end``: a client that loads history elsewhere (the TUI, through /series) gets only new lines.

Without it a 1M-step run's whole metrics.jsonl (100 MB) is replayed line by line to every app that
connects. The cursor starts after each file's last whole line, so a line being written at that
moment is sent whole once it ends, never cut into a fragment; a run created later starts at 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from engine.service.app import create_app
from engine.service.stream import end_cursor, read_new_lines
from engine.store.campaign import Campaign

LINES = '{"step":1,"loss":2.0}\n{"step":2,"loss":1.5}\n'


def campaign_with_run(tmp_path: Path) -> Campaign:
    campaign = Campaign.create(tmp_path / "c", "stream")
    run = campaign.run("r1")
    run.root.mkdir(parents=True)
    run.run_toml.write_text('dataset = "d.jsonl"\n')
    run.metrics.write_text(LINES)
    return campaign


async def read_stream(campaign: Campaign, params: dict[str, str], last_id: str | None = None) -> list[Any]:
    transport = httpx.ASGITransport(app=create_app(campaign))
    headers = {"Last-Event-ID": last_id} if last_id else {}
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://engine") as http,
        aconnect_sse(http, "GET", "/stream", params={"follow": "false", **params}, headers=headers) as source,
    ):
        assert source.response.status_code == 200
        return [event async for event in source.aiter_sse()]


async def test_since_end_skips_what_is_on_disk_and_start_replays_it(tmp_path: Path) -> None:
    campaign = campaign_with_run(tmp_path)
    assert len(await read_stream(campaign, {})) == 2  # the default: everything on disk
    assert len(await read_stream(campaign, {"since": "start"})) == 2
    assert await read_stream(campaign, {"since": "end"}) == []
    # A Last-Event-ID wins over since: a reconnection resumes where it stopped.
    events = await read_stream(campaign, {"since": "end"}, last_id="r1:0.0.0")
    assert [json.loads(e.data)["data"]["step"] for e in events] == [1, 2]


async def test_a_bad_since_is_refused(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=create_app(campaign_with_run(tmp_path)))
    async with httpx.AsyncClient(transport=transport, base_url="http://engine") as http:
        response = await http.get("/stream", params={"since": "yesterday", "follow": "false"})
    assert response.status_code == 422


def test_the_end_cursor_stops_before_a_line_being_written(tmp_path: Path) -> None:
    campaign = campaign_with_run(tmp_path)
    paths = campaign.run("r1")
    with paths.metrics.open("a") as handle:
        handle.write('{"step":3,"lo')  # a writer in the middle of a line
    cursor = end_cursor(paths)
    assert cursor == (len(LINES), 0, 0)
    with paths.metrics.open("a") as handle:
        handle.write('ss":1.0}\n')
    assert [json.loads(line.text)["step"] for line in read_new_lines(paths, cursor)] == [3]


def test_the_end_cursor_of_missing_files_is_zero(tmp_path: Path) -> None:
    campaign = Campaign.create(tmp_path / "c", "stream")
    assert end_cursor(campaign.run("nothing-yet")) == (0, 0, 0)
