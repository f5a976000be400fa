"""The service answers the bench questions over its real Unix socket, as the CLI does."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.store.campaign import Campaign, engine_paths
from tests.bench_fixtures import BD6_SESSION, copy_campaign
from tests.helpers import tunedeck


@pytest.fixture
def bd6() -> Iterator[Campaign]:
    root = Path(tempfile.mkdtemp(prefix="td-", dir="/tmp"))  # short: socket paths are limited
    camp = copy_campaign(BD6_SESSION, root / "bd6")
    started = tunedeck("engine", "start", "--campaign", str(camp.root))
    assert started.returncode == 0, started.stderr
    yield camp
    tunedeck("engine", "stop", "--campaign", str(camp.root))
    shutil.rmtree(root, ignore_errors=True)


def test_bench_diff_and_gate_over_the_socket(bd6: Campaign) -> None:
    transport = httpx.HTTPTransport(uds=str(engine_paths(bd6.root).socket))
    with httpx.Client(transport=transport, base_url="http://engine", timeout=30) as http:
        answer = http.get("/bench/diff", params={"candidate": "bd6.8d2"})
        assert answer.status_code == 200, answer.text
        cli = tunedeck("bench", "diff", "bd6.8d2", "--json", "--campaign", str(bd6.root))
        assert answer.json() == json.loads(cli.stdout)  # the CLI works while the engine runs
        gate = http.get("/bench/gate/bd6.8d2").json()
        assert (gate["passed"], gate["anchors"]["passed"], gate["anchors"]["total"]) == (False, 13, 19)
        rates = http.get("/bench", params={"run": ["bd6", "bd6.5"]}).json()["pass_rates"]
        assert [(r["run"], r["bench"], r["passed"]) for r in rates] == [
            ("bd6", "humaneval", 6), ("bd6", "mbpp", 13), ("bd6.5", "humaneval", 3), ("bd6.5", "mbpp", 12)
        ]  # fmt: skip
        missing = http.get("/bench/diff", params={"candidate": "ghost"})
        assert missing.status_code == 404
        assert "no bench results for 'ghost'" in missing.json()["detail"]
        assert http.get("/bench/diff", params={"candidate": "../etc"}).status_code == 400
