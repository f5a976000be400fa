"""The Decide screen's endpoints through the real app (httpx.ASGITransport) on copies of the sessions.

POST /runs/{run}/decide answers exactly what ``tunedeck decide --json`` prints; GET /tree, the saved
walks and POST /runs/{run}/from-decision; bad answers and unknown runs are 4xx with one line.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from engine.api import DecisionTreeView, DecisionWalk, NextRun, WalkSummary
from engine.service.app import create_app
from engine.store.campaign import Campaign
from tests.decide_fixtures import BD6_SESSION, DECIDE_DATA, V41_SESSION, copy_session
from tests.helpers import tunedeck, tunedeck_here


async def client_for(campaign: Campaign) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(campaign))
    async with httpx.AsyncClient(transport=transport, base_url="http://engine", timeout=60) as client:
        yield client


@pytest.fixture
async def bd6(tmp_path: Path) -> AsyncIterator[tuple[Campaign, httpx.AsyncClient]]:
    campaign = copy_session(BD6_SESSION, tmp_path / "bd6")
    async for client in client_for(campaign):
        yield campaign, client


@pytest.fixture
async def v41(tmp_path: Path) -> AsyncIterator[tuple[Campaign, httpx.AsyncClient]]:
    campaign = copy_session(V41_SESSION, tmp_path / "v4_1")
    source = DECIDE_DATA / "ambiguous.json"
    done = tunedeck_here("import", "trainer-state", str(source), "--run", "v4.1", "--campaign", str(campaign.root))
    assert done.returncode == 0, done.stderr
    async for client in client_for(campaign):
        yield campaign, client


async def test_decide_answers_what_the_cli_prints(bd6: tuple[Campaign, httpx.AsyncClient]) -> None:
    campaign, client = bd6
    answer = await client.post("/runs/bd6.8d2/decide", json={"answers": {}})
    assert answer.status_code == 200, answer.text
    walk = DecisionWalk.model_validate(answer.json())
    assert (walk.walk, walk.status, walk.recommendation and walk.recommendation.id) == (
        "0001",
        "recommended",
        "rank-bump",
    )
    cli = tunedeck("decide", "bd6.8d2", "--json", "--campaign", str(campaign.root))
    printed = json.loads(cli.stdout)
    assert printed["walk"] == "0002"  # the CLI saved its own walk
    for key in ("recommendation", "path", "steps", "facts", "questions", "answers", "status"):
        assert printed[key] == answer.json()[key], key
    first = walk.steps[0]  # self-describing for the Decide screen: node, kind, fact, value, branch
    assert (first.node, first.kind, first.fact, first.value, first.op, first.branch, first.next) == (
        "gate", "condition", "gate", False, "is", "else", "noise"
    )  # fmt: skip
    assert walk.facts["lever_peaks"].value == {"replication": 15, "kl": 15, "token_weighted_ce": 15}


async def test_the_tree_and_the_saved_walks(bd6: tuple[Campaign, httpx.AsyncClient]) -> None:
    _, client = bd6
    tree = DecisionTreeView.model_validate((await client.get("/tree")).json())
    assert (tree.tree, tree.start) == ("tree.toml", "gate")
    nodes = {node.id: node for node in tree.nodes}
    assert nodes["saturated"].branches == {"then": "rank", "else": "revert"}
    assert (nodes["rank"].fact, nodes["rank"].op, nodes["rank"].operand) == ("rank", "<", 16)
    assert nodes["rank-bump"].kind == "leaf"
    peaks = next(f for f in tree.facts if f.name == "lever_peaks")
    assert peaks.params["levers"] == {
        "replication": ["bd6.5"],
        "kl": ["bd6.5"],
        "token_weighted_ce": ["bd6.8d", "bd6.8d2"],
    }
    assert [leaf.id for leaf in tree.leaves] == ["promote", "decoder-noise", "revert", "rank-bump", "ship"]

    assert (await client.get("/runs/bd6.8d2/decisions")).json() == []
    await client.post("/runs/bd6.8d2/decide", json={})
    listed = [WalkSummary.model_validate(w) for w in (await client.get("/runs/bd6.8d2/decisions")).json()]
    assert [(w.walk, w.status, w.recommendation) for w in listed] == [("0001", "recommended", "rank-bump")]
    saved = await client.get("/runs/bd6.8d2/decisions/1")
    assert DecisionWalk.model_validate(saved.json()).walk == "0001"
    assert (await client.get("/runs/bd6.8d2/decisions/7")).status_code == 404


async def test_from_decision_writes_the_next_run(bd6: tuple[Campaign, httpx.AsyncClient]) -> None:
    campaign, client = bd6
    await client.post("/runs/bd6.8d2/decide", json={})
    made = await client.post("/runs/bd6.8d2/from-decision", json={"new_run": "bd6.8d-rank"})
    assert made.status_code == 200, made.text
    assert NextRun.model_validate(made.json()).run_toml == "runs/bd6.8d-rank/run.toml"
    assert "r = 16" in campaign.run("bd6.8d-rank").run_toml.read_text()
    again = await client.post("/runs/bd6.8d2/from-decision", json={"new_run": "bd6.8d-rank"})
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]


async def test_answers_and_replay_over_http(v41: tuple[Campaign, httpx.AsyncClient]) -> None:
    _, client = v41
    asked = (await client.post("/runs/v4.1/decide", json={"answers": {}})).json()
    assert (asked["status"], [q["key"] for q in asked["questions"]]) == ("question", ["improved"])
    assert asked["questions"][0]["choices"] == ["yes", "no"]
    answered = (await client.post("/runs/v4.1/decide", json={"answers": {"improved": "no"}})).json()
    assert answered["path"][-2:] == ["extraction-stuck", "ask-flat"]  # extraction 0.30 moved: asked again
    replay = (await client.post("/runs/v4.1/decide", json={"replay": "0002"})).json()
    assert (replay["replay_of"], replay["answers"], replay["changed_facts"]) == ("0002", {"improved": "no"}, [])


async def test_bad_requests_are_one_line_4xx(v41: tuple[Campaign, httpx.AsyncClient]) -> None:
    _, client = v41
    bad = await client.post("/runs/v4.1/decide", json={"answers": {"improved": "perhaps"}})
    assert bad.status_code == 400
    assert "'perhaps' is not a choice (one of: yes, no)" in bad.json()["detail"]
    assert (await client.post("/runs/ghost/decide", json={})).status_code == 404
    assert (await client.post("/runs/v4.1/decide", json={"answers": {}, "extra": 1})).status_code == 422
