"""Shared fixtures: a tiny model built once per session, and campaigns that train on it."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import engine.worker  # noqa: F401  (offline, quiet environment before transformers loads)
from engine.demo.reverse_task import reverse_rows
from engine.store.campaign import Campaign
from tests.helpers import FAST_RUN, write_jsonl

# One intra-op thread for torch, here and in every worker the tests start (they inherit the
# environment), unless the caller sets it. On 2 cores shared with other processes, torch's
# spinning threads fight them and each other: a 200-step worker run took 79 s with 2 threads
# and 15 s with 1 on the same loaded machine. It must be set before torch is imported: nothing
# above imports it, and pytest loads this file before any test module.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2 model folder, built from scratch (no hub)."""
    from engine.worker.tinymodel import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-qwen2")


@pytest.fixture
def campaign(tmp_path: Path, tiny_model: Path) -> Campaign:
    """A campaign on the tiny model with 400 rows of the reverse task."""
    camp = Campaign.create(tmp_path / "campaign", "test campaign", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "train.jsonl", reverse_rows(400, seed=1))
    return camp


@pytest.fixture
def make_run(campaign: Campaign) -> Callable[..., Path]:
    """Write runs/<name>/run.toml (fast settings unless ``text`` is given); returns the run folder."""

    def make(name: str = "r1", text: str | None = None, **settings: int) -> Path:
        values = {"max_steps": 40, "logging_steps": 5, "save_steps": 20} | settings
        run_dir = campaign.run(name).root
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.toml").write_text(text if text is not None else FAST_RUN.format(**values), encoding="utf-8")
        return run_dir

    return make


@pytest.fixture(scope="session", autouse=True)
def no_engine_outlives_the_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Commands such as ``tunedeck merge`` start an engine that stays, as it does for a user:
    at the end of the session, every engine serving a campaign under pytest's temporary
    folder is asked to stop (its workers have ended with their tests)."""
    yield
    base = str(tmp_path_factory.getbasetemp())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"engine.service" in cmdline and any(part.decode(errors="replace").startswith(base) for part in cmdline):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGTERM)
