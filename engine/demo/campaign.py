"""``tunedeck demo``: a whole campaign, end to end, on a tiny offline model in a couple of minutes.

Builds a tiny Qwen2-shaped model, creates a demo campaign, measures held-out exact match
before training, trains one LoRA run on a task the tiny model can learn, merges it, and
measures again; then benches the base model and the trained run on a held-out suite and diffs
them row by row. Every torch step runs in a worker process, exactly as a real run does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.demo.reverse_task import HELDOUT_ROWS, HELDOUT_SEED, TRAIN_ROWS, TRAIN_SEED, reverse_rows
from engine.demo.suite import write_demo_suite
from engine.errors import TunedeckError
from engine.runs.launch import merge_command, python_module, train_command
from engine.store.campaign import Campaign
from engine.store.jsonl import write_jsonl_atomic, write_text_atomic
from engine.store.metrics import read_metrics, series

RUN = "demo-r1"
MARKER = ".tunedeck-demo"
MODEL = "models/tiny-qwen2"
SUITE = "suites/demo.jsonl"

# The model folder is declared, so a copy of the campaign without it (sessions/demo) trains as it
# is: the first training worker builds it (engine.worker.tiny_base).
CAMPAIGN_TOML = f"""\
name = "tunedeck demo"
base = "{MODEL}"

[models]
tiny = ["{MODEL}"]   # built offline by tunedeck on first use (a small random Qwen2 and its tokenizer)
"""

RUN_TOML = """\
description = "LoRA on the tiny model: learn to reverse a sequence of letters"
dataset = "datasets/train.jsonl"
eval_dataset = "datasets/heldout.jsonl"

[lora]
r = 8
alpha = 16
target_modules = ["q_proj", "k_proj", "v_proj", "o_proj"]

[train]
learning_rate = 5e-3
lr_scheduler = "linear"
batch_size = 16
max_steps = 1000
logging_steps = 10
eval_steps = 100
save_steps = 250
seed = 0
"""


class WorkerFailed(TunedeckError):
    """A worker process the demo started did not succeed."""


def _run_worker(command: list[str], log: Path) -> str:
    """Run a worker to completion; its stderr goes to ``log``, its stdout is returned."""
    with open(log, "a", encoding="utf-8") as err:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, text=True, check=False)
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-1:] or ["(no output)"]
        raise WorkerFailed(f"{' '.join(command[1:4])} exited with status {done.returncode}: {tail[0]}", path=log)
    return done.stdout


def _prepare_folder(root: Path) -> None:
    """Use an empty folder, or replace an earlier demo; never overwrite anything else."""
    if root.exists() and any(root.iterdir()):
        if not (root / MARKER).exists():
            raise TunedeckError("exists and is not a tunedeck demo folder; pass --dir NEW_DIR", path=root)
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("created by tunedeck demo; safe to delete\n", encoding="utf-8")


def write_demo_files(root: Path) -> list[Path]:
    """The demo campaign's text files (campaign.toml, datasets, run.toml, suite) in ``root``: what
    sessions/demo commits. No model: the first training worker builds the declared one."""
    files = {
        "campaign.toml": CAMPAIGN_TOML,
        f"runs/{RUN}/run.toml": RUN_TOML,
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(root / relative, text)
    write_jsonl_atomic(root / "datasets" / "train.jsonl", reverse_rows(TRAIN_ROWS, seed=TRAIN_SEED))
    write_jsonl_atomic(root / "datasets" / "heldout.jsonl", reverse_rows(HELDOUT_ROWS, seed=HELDOUT_SEED))
    write_demo_suite(root / SUITE)
    return [root / name for name in (*files, "datasets/train.jsonl", "datasets/heldout.jsonl", SUITE)]


def create_demo_campaign(root: Path) -> Campaign:
    """The campaign folder with its datasets, suite and run.toml (the model is built by a worker)."""
    _prepare_folder(root)
    write_demo_files(root)
    return Campaign.open(root)


def prepare_live_demo(root: Path, say: Callable[[str], None]) -> Campaign:
    """The demo campaign with its tiny model built, ready for the engine to train ``RUN`` live."""
    root = root.resolve()
    campaign = create_demo_campaign(root)
    say(f"building the tiny model in {root / MODEL}")
    _run_worker(python_module("engine.worker.tinymodel", str(root / MODEL)), root / "demo.log")
    return campaign


def _evaluate(model_dir: Path, rows: Path, log: Path) -> float:
    command = python_module("engine.worker.evaluate", str(model_dir), str(rows), "--max-new-tokens", "16")
    return float(json.loads(_run_worker(command, log).strip().splitlines()[-1])["exact_match"])


def run_demo(root: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Run the whole demo in ``root``; returns the summary printed by ``--json``."""
    started = time.time()
    root = root.resolve()
    campaign = create_demo_campaign(root)
    log = root / "demo.log"
    paths = campaign.run(RUN)
    heldout = root / "datasets" / "heldout.jsonl"

    say(f"building the tiny model in {root / MODEL}")
    _run_worker(python_module("engine.worker.tinymodel", str(root / MODEL)), log)
    say("measuring held-out exact match before training")
    before = _evaluate(root / MODEL, heldout, log)
    say(f"  before: {before:.2f}; training {RUN} (1000 steps, LoRA r=8)")
    _run_worker(train_command(paths.root), log)
    losses = series(read_metrics(paths.metrics), "loss")
    say(f"  loss {losses[0][1]:.3f} -> {losses[-1][1]:.3f}; merging")
    merged = json.loads(_run_worker(merge_command(paths.root), log).strip().splitlines()[-1])
    say(f"  max |logit diff| merged vs adapter: {merged['max_logit_diff']:.2e}; measuring again")
    after = _evaluate(paths.merged, heldout, log)
    say(f"  after: {after:.2f}")
    bench = _bench(campaign, say)
    return {
        "campaign": str(root),
        "run": RUN,
        "eval": {"before": before, "after": after, "n": HELDOUT_ROWS, "metric": "exact_match"},
        "merged": merged["merged"],
        "max_logit_diff": merged["max_logit_diff"],
        "train": {"first_loss": losses[0][1], "last_loss": losses[-1][1], "steps": losses[-1][0]},
        "bench": bench,
        "seconds": round(time.time() - started, 1),
    }


def _bench(campaign: Campaign, say: Callable[[str], None]) -> dict[str, Any]:
    """Bench the base model (RUN@0) and the trained run on the demo suite, then diff them."""
    from engine.bench.compare import diff
    from engine.bench.db import opened
    from engine.bench.run import run_suite

    suite = write_demo_suite(campaign.root / SUITE)
    say(f"benching the base model and {RUN} on {suite.relative_to(campaign.root)}")
    base = run_suite(campaign, RUN, suite, checkpoint=0).model_dump(mode="json")
    trained = run_suite(campaign, RUN, suite).model_dump(mode="json")
    with opened(campaign) as db:
        result = diff(db, RUN, f"{RUN}@0")
    for name, totals in trained["benches"].items():
        before = base["benches"][name]
        say(f"  {name}: {before['passed']}/{before['total']} -> {totals['passed']}/{totals['total']}")
    p_value = result.p_value
    say(
        f"  {len(result.gained)} rows gained, {len(result.lost)} lost"
        + (f" (McNemar p = {p_value:.2g})" if p_value is not None else "")
        + f"; see: tunedeck bench diff {RUN} --against {RUN}@0 --campaign {campaign.root}"
    )
    return {
        "suite": str(suite),
        "base": base["benches"],
        "trained": trained["benches"],
        "gained": len(result.gained),
        "lost": len(result.lost),
        "p_value": p_value,
    }
