"""Every GPU job goes through the engine's one queue: merges and bench generation wait for training.

The real engine on a real socket, real workers; one campaign for the module (training is the slow part).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from engine.demo.reverse_task import reverse_rows
from engine.runs.jobs import read_jobs
from engine.store.campaign import Campaign, engine_paths
from engine.store.jsonl import read_jsonl
from engine.store.merged import merged_problem
from tests.helpers import (
    FAST_RUN,
    REPO,
    processes_running,
    stop_engine_and_workers,
    tunedeck,
    wait_for,
    write_jsonl,
    write_run_toml,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def campaign(tiny_model: Path) -> Iterator[Campaign]:
    """A short-path campaign with one finished run ``done`` (20 steps) to merge and bench."""
    root = Path(tempfile.mkdtemp(prefix="td-jobs-", dir="/tmp"))
    camp = Campaign.create(root / "c", "job tests", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "train.jsonl", reverse_rows(200, seed=1))
    write_run(camp, "done", max_steps=20, save_steps=10)
    assert cli(camp, "run", str(camp.root / "done.toml"))["run"] == "done"
    wait_for(lambda: cli(camp, "status", "done")["state"] == "finished", what="the first run to finish")
    yield camp
    stop_engine_and_workers(camp.root)
    shutil.rmtree(root, ignore_errors=True)


def write_run(campaign: Campaign, name: str, **settings: int) -> Path:
    return write_run_toml(campaign.root, name, **settings)


def cli(campaign: Campaign, *args: str, code: int = 0) -> Any:
    done = tunedeck(*args, "--campaign", str(campaign.root), "--json", timeout=300)
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout) if code == 0 else done.stderr


def start_cli(campaign: Campaign, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", "from engine.cli.main import main; main()", *args]
    return subprocess.Popen(
        [*command, "--campaign", str(campaign.root), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_a_merge_waits_for_training_then_runs_and_a_second_is_refused(campaign: Campaign) -> None:
    cli(campaign, "run", str(write_run(campaign, "busy", max_steps=5000)))
    wait_for(lambda: cli(campaign, "status", "busy")["state"] == "running", what="busy to train")
    merge = start_cli(campaign, "merge", "done")
    job = wait_for(lambda: [j for j in read_jobs(campaign) if j.kind == "merge"], what="the merge job")[0]
    time.sleep(1.0)
    assert read_jobs(campaign)[0].state == "queued", "a merge started while another GPU job ran"
    text = tunedeck("status", "--campaign", str(campaign.root)).stdout
    assert "merge of done" in text
    assert "queued" in text

    second = tunedeck("merge", "done", "--campaign", str(campaign.root))
    assert second.returncode == 2
    assert f"a merge of run 'done' is already queued (job {job.id})" in second.stderr
    assert second.stderr.count("\n") == 1

    cli(campaign, "stop", "busy")
    out, err = merge.communicate(timeout=300)
    assert merge.returncode == 0, err
    summary = json.loads(out)
    assert summary["merged"] == str(campaign.run("done").merged)
    assert merged_problem(campaign.run("done").merged) is None
    (finished,) = [j for j in read_jobs(campaign) if j.id == job.id]
    assert finished.state == "finished"
    stopped_at = [e["ts"] for e in read_jsonl(campaign.run("busy").events) if e["event"] == "stopped"][-1]
    assert finished.started is not None
    assert finished.started >= stopped_at - 0.5, "the merge ran beside the training"
    assert "queued" in err  # it said it was waiting


def test_bench_generation_is_a_job_too(campaign: Campaign, tmp_path: Path) -> None:
    suite = write_jsonl(
        tmp_path / "suite.jsonl",
        [
            {"task_id": f"t{i}", "prompt": row["prompt"], "expected": row["completion"]}
            for i, row in enumerate(reverse_rows(6, seed=9))
        ],
    )
    result = cli(campaign, "bench", "run", "done", "--suite", str(suite), "--checkpoint", "10")
    assert result["run"] == "done@10"
    assert sum(b["total"] for b in result["benches"].values()) == 6
    jobs = [j for j in read_jobs(campaign) if j.kind == "bench"]
    assert jobs[-1].state == "finished"
    assert jobs[-1].checkpoint == 10


def test_a_queued_job_can_be_stopped_and_never_runs(campaign: Campaign) -> None:
    cli(campaign, "run", str(write_run(campaign, "hog", max_steps=5000)))
    wait_for(lambda: cli(campaign, "status", "hog")["state"] == "running", what="hog to train")
    merge = start_cli(campaign, "merge", "done")
    job = wait_for(
        lambda: [j for j in read_jobs(campaign) if j.kind == "merge" and j.state == "queued"], what="queued"
    )[0]
    merge.send_signal(signal.SIGINT)  # Ctrl-C: the job leaves the queue
    merge.communicate(timeout=60)
    (after,) = [j for j in read_jobs(campaign) if j.id == job.id]
    assert after.state == "stopped"
    assert after.started is None
    cli(campaign, "stop", "hog")


def test_resume_of_a_finished_run_needs_extend_and_more_steps(campaign: Campaign) -> None:
    refused = cli(campaign, "resume", "done", code=2)
    assert "run 'done' has finished (step 20); resuming would replace its adapter" in refused
    assert "--extend" in refused
    same = cli(campaign, "resume", "done", "--extend", code=2)
    assert "train.max_steps: is 20, not above the 20 steps" in same
    toml = campaign.run("done").run_toml
    toml.write_text(toml.read_text().replace("max_steps = 20", "max_steps = 30"))
    assert cli(campaign, "resume", "done", "--extend")["run"] == "done"
    wait_for(lambda: cli(campaign, "status", "done")["state"] == "finished", what="the extension")
    assert cli(campaign, "status", "done")["step"] == 30


def test_four_processes_submitting_stopping_and_resuming_leave_a_consistent_queue(campaign: Campaign) -> None:
    names = [f"c{i}" for i in range(4)]
    for name in names:
        write_run(campaign, name, max_steps=5000)

    def churn(name: str) -> list[int]:
        codes = []
        for args in (("run", str(campaign.root / f"{name}.toml")), ("stop", name), ("resume", name), ("stop", name)):
            done = tunedeck(*args, "--campaign", str(campaign.root), "--json", timeout=300)
            codes.append(done.returncode)
            assert "Traceback" not in done.stderr, done.stderr
        return codes

    with ThreadPoolExecutor(4) as pool:
        outcomes = dict(zip(names, pool.map(churn, names), strict=True))
    for name, codes in outcomes.items():
        assert codes[0] == 0, (name, codes)
        assert all(code in (0, 1, 2) for code in codes), (name, codes)
    # Whatever interleaving happened: every run ends settled, each launch recorded once per queue entry.
    try:
        wait_for(
            lambda: all(cli(campaign, "status", n)["state"] in ("stopped", "finished", "failed") for n in names),
            what="every run to settle",
        )
    except AssertionError:
        states = {
            n: (cli(campaign, "status", n), [e["event"] for e in read_jsonl(campaign.run(n).events)]) for n in names
        }
        raise AssertionError(f"{outcomes}\n{json.dumps(states, indent=1)}") from None
    for name in names:
        events = [e["event"] for e in read_jsonl(campaign.run(name).events)]
        # One worker per queue entry at most ("resumed" comes with the "started" of a resume's launch).
        assert events.count("started") <= events.count("queued"), (name, events)
        detail = "\n".join(json.dumps(e) for e in read_jsonl(campaign.run(name).events))
        assert "failed" not in events, f"{name}: {outcomes[name]}\n{detail}"
    assert len(processes_running("engine.service", str(campaign.root))) == 1


def test_a_campaign_in_a_long_path_gets_a_short_socket(tiny_model: Path, tmp_path: Path) -> None:
    deep = tmp_path / ("a-very-long-folder-name-" * 6) / "campaign"
    camp = Campaign.create(deep, "deep")
    assert len(str(deep / ".tunedeck" / "engine.sock")) > 107
    try:
        started = cli(camp, "engine", "start")
        assert started["running"] is True
        socket = Path(started["socket"])
        assert len(str(socket)) <= 107
        assert socket == engine_paths(camp.root).socket
        assert oct(socket.parent.stat().st_mode & 0o777) == "0o700"
        assert cli(camp, "engine", "status")["pid"] == started["pid"]
    finally:
        tunedeck("engine", "stop", "--campaign", str(camp.root))


def test_a_merge_outlives_its_engine_and_the_next_engine_settles_it(campaign: Campaign) -> None:
    merge = start_cli(campaign, "merge", "done")
    job = wait_for(lambda: [j for j in read_jobs(campaign) if j.kind == "merge" and j.state == "running"])[-1]
    engine_pid = cli(campaign, "engine", "status")["pid"]
    os.kill(engine_pid, signal.SIGKILL)
    # The CLI waiting on the job starts a new engine, which re-adopts the running merge (or settles it).
    out, err = merge.communicate(timeout=300)
    assert merge.returncode == 0, err
    assert json.loads(out)["merged"] == str(campaign.run("done").merged)
    assert cli(campaign, "engine", "status")["pid"] != engine_pid
    done = wait_for(lambda: [j for j in read_jobs(campaign) if j.id == job.id and j.state == "finished"], timeout=60)
    assert done[0].result is not None
    assert done[0].result["merged"] == str(campaign.run("done").merged)
    assert merged_problem(campaign.run("done").merged) is None


def test_a_run_that_fails_says_why_and_runs_again_once_fixed(campaign: Campaign, tmp_path: Path) -> None:
    broken = campaign.root / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{}")  # passes the pre-launch check, fails to load in the worker
    toml = campaign.root / "fragile.toml"
    good = FAST_RUN.format(max_steps=4, logging_steps=2, save_steps=4)
    toml.write_text('base = "models/broken"\n' + good)
    cli(campaign, "run", str(toml))
    failed = wait_for(lambda: (s := cli(campaign, "status", "fragile"))["state"] == "failed" and s, what="the failure")
    assert failed["reason"], failed
    text = tunedeck("status", "fragile", "--campaign", str(campaign.root)).stdout
    assert "failed: " in text
    assert "tunedeck run runs/fragile/run.toml" in text
    toml.write_text(good)  # fixed: the campaign's own base model
    assert cli(campaign, "run", str(toml))["run"] == "fragile"
    wait_for(lambda: cli(campaign, "status", "fragile")["state"] == "finished", what="the fixed run")
    assert cli(campaign, "status", "fragile")["reason"] is None


CTRL_C_PROBE = """
import os, signal, time
from engine.cli.client import _hold_ctrl_c, _release_ctrl_c
held = _hold_ctrl_c()
os.kill(os.getpid(), signal.SIGINT)  # pressed while the request is on its way
time.sleep(0.05)
print("held", flush=True)  # not delivered yet: the submit would go on to get the job's id
try:
    _release_ctrl_c(held)
    time.sleep(1)
    print("lost", flush=True)
except KeyboardInterrupt:
    print("delivered after the release", flush=True)
"""


def test_a_ctrl_c_while_the_job_is_submitted_arrives_once_its_id_is_known() -> None:
    """run_job holds SIGINT back during the POST that queues the job (the engine queues it before it
    answers): the Ctrl-C is delivered right after, inside the block that stops the job. In a process
    of its own: a SIGINT to a test runner's worker would stop the worker."""
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_PROBE], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)}, check=False,
    )  # fmt: skip
    assert done.stdout.split("\n")[:2] == ["held", "delivered after the release"], done.stderr
