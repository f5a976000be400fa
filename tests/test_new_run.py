"""``POST /runs``: the TUI's "new run from a run.toml" — placed at runs/<run>/ and queued, as ``tunedeck run`` does.

The engine takes only a run.toml inside its campaign (a client over TCP must not make it read
files elsewhere), checks everything before writing, and never overwrites a run that exists.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.demo.reverse_task import reverse_rows
from engine.service.app import create_app
from engine.store.campaign import Campaign, engine_paths
from tests.helpers import stop_engine_and_workers, tunedeck, wait_for, write_jsonl, write_run_toml


@pytest.fixture
def campaign(tiny_model: Path) -> Iterator[Campaign]:
    root = Path(tempfile.mkdtemp(prefix="td-", dir="/tmp"))  # a short path: socket paths are limited
    camp = Campaign.create(root / "c", "new runs", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "train.jsonl", reverse_rows(200, seed=3))
    yield camp
    stop_engine_and_workers(camp.root)
    shutil.rmtree(root, ignore_errors=True)


async def post_run(campaign: Campaign, run_toml: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(campaign))  # no lifespan: refusals need no core
    async with httpx.AsyncClient(transport=transport, base_url="http://engine") as http:
        return await http.post("/runs", json={"run_toml": run_toml})


def files_of(campaign: Campaign) -> list[str]:
    return sorted(str(p.relative_to(campaign.root)) for p in campaign.root.rglob("*") if ".tunedeck" not in p.parts)


@pytest.mark.parametrize(
    ("given", "detail"),
    [
        ("../outside.toml", "not inside the campaign folder"),
        ("/etc/passwd", "not inside the campaign folder"),
        ("drafts/missing.toml", "no such file"),
        ("link.toml", "not inside the campaign folder"),  # a symlink to a run.toml outside the campaign
        ("bad.toml", "max_steps"),
        ("0" * 300, "not a usable path (OSError)"),  # longer than a file name may be (the fuzzer found it)
        ("a\x00b.toml", "not a usable path (ValueError)"),
    ],
)
async def test_a_run_toml_the_engine_must_not_take_is_refused_and_nothing_is_written(
    campaign: Campaign, given: str, detail: str
) -> None:
    outside = write_run_toml(campaign.root.parent, "outside")
    (campaign.root / "link.toml").symlink_to(outside)
    (campaign.root / "bad.toml").write_text('dataset = "datasets/train.jsonl"\n[train]\nmax_steps = -4\n')
    before = files_of(campaign)
    response = await post_run(campaign, given)
    assert response.status_code == 400, response.text
    assert detail in response.json()["detail"]
    assert files_of(campaign) == before


async def test_an_existing_run_is_never_overwritten(campaign: Campaign) -> None:
    run = campaign.run("r1")
    run.root.mkdir(parents=True)
    run.run_toml.write_text('dataset = "datasets/train.jsonl"\n[train]\nmax_steps = 7\n')
    (campaign.root / "drafts").mkdir()
    (campaign.root / "drafts" / "r1.toml").write_text('dataset = "datasets/train.jsonl"\n[train]\nmax_steps = 9\n')
    response = await post_run(campaign, "drafts/r1.toml")
    assert response.status_code == 400
    assert "already exists with a different run.toml" in response.json()["detail"]
    assert "max_steps = 7" in run.run_toml.read_text()


@pytest.mark.slow
def test_the_engine_places_and_queues_a_new_run(campaign: Campaign) -> None:
    write_run_toml(campaign.root, "fresh", max_steps=400)
    assert tunedeck("engine", "start", "--campaign", str(campaign.root)).returncode == 0
    socket_path = engine_paths(campaign.root).socket
    with httpx.Client(
        transport=httpx.HTTPTransport(uds=str(socket_path)), base_url="http://engine", timeout=30
    ) as http:
        answer = http.post("/runs", json={"run_toml": "fresh.toml"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["run"] == "fresh"
        assert answer.json()["state"] in ("queued", "running")
        assert (campaign.run("fresh").run_toml).read_text() == (campaign.root / "fresh.toml").read_text()
        wait_for(lambda: http.get("/runs/fresh").json()["step"] > 0, timeout=120)
        again = http.post("/runs", json={"run_toml": "fresh.toml"})
        assert again.status_code == 400
        assert "has already trained; use 'tunedeck resume fresh'" in again.json()["detail"]
        http.post("/runs/fresh/stop", json={"reason": "test over"})
        wait_for(lambda: http.get("/runs/fresh").json()["state"] == "stopped", timeout=120)
