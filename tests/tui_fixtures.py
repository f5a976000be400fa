"""Campaigns and app factories for the TUI tests: the real engine app in process over ASGITransport."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from engine.service.app import create_app
from engine.store.campaign import Campaign
from tui.app import TunedeckApp
from tui.client import EngineTarget

REPO = Path(__file__).resolve().parent.parent
SIZE = (120, 40)
# Routes of the monitor API (engine/api/monitor.py); an "old engine" is the app without them.
MONITOR_ROUTES = {"/runs/summary", "/runs/{run}/series", "/runs/{run}/metric-names", "/runs/{run}/console"}

RUN_TOML = """\
dataset = "datasets/train.jsonl"
[train]
max_steps = {max_steps}
logging_steps = 1
"""


def metric_records(steps: int, *, spike_at: int | None = None, eval_every: int = 50) -> list[dict[str, Any]]:
    """A training log as HF writes it: loss falling, one grad-norm spike, eval lines now and then."""
    records: list[dict[str, Any]] = []
    for step in range(1, steps + 1):
        grad = 40.0 if step == spike_at else 1.0 + 0.1 * math.sin(step)
        records.append(
            {
                "step": step,
                "ts": 1000.0 + step * 0.5,
                "loss": 3.0 / (1 + step / 50),
                "grad_norm": grad,
                "learning_rate": 5e-5 * min(1.0, step / 20),
            }
        )
        if step % eval_every == 0:
            records.append({"step": step, "ts": 1000.0 + step * 0.5, "eval_loss": 2.5 / (1 + step / 80)})
    return records


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def add_run(campaign: Path, name: str, *, max_steps: int, records: list[dict[str, Any]]) -> Path:
    """runs/<name>/run.toml and its metrics.jsonl."""
    run = campaign / "runs" / name
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.toml").write_text(RUN_TOML.format(max_steps=max_steps), encoding="utf-8")
    write_jsonl(run / "metrics.jsonl", records)
    return run


def bd6_copy(tmp: Path) -> Path:
    """sessions/bd6 in ``tmp`` with two runs: bd6.8d (production, finished) and bd6.8d2 (600 steps logged)."""
    root = tmp / "bd6"
    shutil.copytree(REPO / "sessions" / "bd6", root)
    shutil.rmtree(root / "runs")  # the session's own four runs (bench results only): these two instead
    add_run(root, "bd6.8d", max_steps=200, records=metric_records(200))
    add_run(root, "bd6.8d2", max_steps=1000, records=metric_records(600, spike_at=300))
    return root


def engine_app(root: Path, *, old: bool = False) -> FastAPI:
    """The real engine's app on ``root`` (``old``: without the monitor routes, as an older engine)."""
    app = create_app(Campaign.open(root))
    if old:
        app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) not in MONITOR_ROUTES]
    return app


def tui_app(root: Path, *, old: bool = False, open_run: str | None = None) -> TunedeckApp:
    """The TUI on the in-process engine; its stream is read once (an endless one hangs under ASGITransport)."""
    transport = httpx.ASGITransport(app=engine_app(root, old=old))
    app = TunedeckApp(EngineTarget(campaign=root, transport=transport), open_run=open_run)
    app.client.follow = False
    return app
