"""Copies of the small bench campaign in tests/data/bench_campaign for one test each."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.store.campaign import Campaign
from tests.helpers import REPO

BENCH_CAMPAIGN = REPO / "tests" / "data" / "bench_campaign"
BD6_SESSION = REPO / "sessions" / "bd6"


def copy_campaign(source: Path, target: Path) -> Campaign:
    """A private copy (the DuckDB cache is written under <campaign>/.tunedeck)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".tunedeck"))
    return Campaign.open(target)
