"""Campaigns for the decide tests: copies of the sessions, and a tiny campaign with a tree of one's choosing."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.store.campaign import Campaign
from tests.helpers import REPO

DECIDE_DATA = REPO / "tests" / "data" / "decide"
TREES = DECIDE_DATA / "trees"
V41_SESSION = REPO / "sessions" / "v4_1"
BD6_SESSION = REPO / "sessions" / "bd6"


def copy_session(source: Path, target: Path) -> Campaign:
    """A private copy of a session (decide saves walks in it; the DuckDB cache is rebuilt)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".tunedeck", "decisions"))
    return Campaign.open(target)


def tree_campaign(root: Path, tree_text: str, run_toml: str = 'dataset = "datasets/train.jsonl"\n') -> Campaign:
    """A campaign naming tree.toml, with one run r1."""
    root.mkdir(parents=True)
    (root / "campaign.toml").write_text('name = "decide"\ntree = "tree.toml"\n', encoding="utf-8")
    (root / "tree.toml").write_text(tree_text, encoding="utf-8")
    (root / "runs" / "r1").mkdir(parents=True)
    (root / "runs" / "r1" / "run.toml").write_text(run_toml, encoding="utf-8")
    return Campaign.open(root)
