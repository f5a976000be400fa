"""Saved walks: runs/<run>/decisions/<walk>.json, one file per walk, never overwritten; replay.

Walk ids count up per run (``0001``, ``0002``, ...). A walk is written to a temporary file and
then hard-linked to its name, which fails if the name is taken: two processes deciding at once
each get their own id, and a reader sees a whole file or none. ``decide`` is what the CLI and
the service both call.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from pydantic import ValidationError

from engine.api import DecisionWalk, FactChange, WalkSummary
from engine.decisions.tree import DecisionTree, load_tree
from engine.decisions.walk import walk_tree
from engine.errors import ConfigError, NotFoundError
from engine.store.atomic import current_umask
from engine.store.campaign import Campaign
from engine.store.safe_paths import refuse_symlinks

DECISIONS_DIR = "decisions"
_WALK_FILE = re.compile(r"^(\d{4,})\.json$")


def decisions_dir(campaign: Campaign, run: str) -> Path:
    """Where a run's walks are saved."""
    return campaign.run(run).root / DECISIONS_DIR


def _walk_ids(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    ids = [m.group(1) for p in folder.iterdir() if (m := _WALK_FILE.match(p.name))]
    return sorted(ids, key=int)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def save_walk(campaign: Campaign, walk: DecisionWalk) -> DecisionWalk:
    """Write ``walk`` under the next free id; the walk with its id."""
    folder = refuse_symlinks(decisions_dir(campaign, walk.run))
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".walk.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        ids = _walk_ids(folder)
        number = int(ids[-1]) + 1 if ids else 1
        while True:
            walk_id = f"{number:04d}"
            saved = walk.model_copy(update={"walk": walk_id})
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            _write_all(fd, (saved.model_dump_json(indent=1) + "\n").encode())
            os.fsync(fd)
            try:
                os.link(tmp, folder / f"{walk_id}.json")  # fails when the id is taken: never overwrite
            except FileExistsError:
                number += 1
                continue
            return saved
    finally:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)


def _walk_file(campaign: Campaign, run: str, walk_id: str) -> Path:
    folder = decisions_dir(campaign, run)
    if walk_id == "latest":
        ids = _walk_ids(folder)
        if not ids:
            raise NotFoundError(f"no saved walks for {run}: run 'tunedeck decide {run}' first", path=folder)
        walk_id = ids[-1]
    if not walk_id.isdigit():
        raise ConfigError(f"not a walk id: {walk_id!r} (e.g. 1, 0001 or latest)", field="--replay")
    path = folder / f"{int(walk_id):04d}.json"
    if not path.is_file():
        raise NotFoundError(f"no saved walk {walk_id} for {run}", path=path)
    return path


def load_walk(campaign: Campaign, run: str, walk_id: str) -> DecisionWalk:
    """A saved walk by id (``1``, ``0001`` or ``latest``)."""
    campaign.load_run(run)
    path = _walk_file(campaign, run, walk_id)
    try:
        return DecisionWalk.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"not a saved walk ({str(exc).splitlines()[0]})", path=path) from None


def list_walks(campaign: Campaign, run: str) -> list[WalkSummary]:
    """The run's saved walks, oldest first."""
    campaign.load_run(run)
    summaries = []
    for walk_id in _walk_ids(decisions_dir(campaign, run)):
        walk = load_walk(campaign, run, walk_id)
        summaries.append(
            WalkSummary(
                walk=walk_id,
                created_at=walk.created_at,
                status=walk.status,
                recommendation=walk.recommendation.id if walk.recommendation else None,
                answers=walk.answers,
                replay_of=walk.replay_of,
            )  # fmt: skip
        )
    return summaries


def _changes(before: DecisionWalk, after: DecisionWalk) -> list[FactChange]:
    changes = []
    for name in sorted(set(before.facts) | set(after.facts)):
        old, new = before.facts.get(name), after.facts.get(name)
        old_value = old.value if old else None
        new_value = new.value if new else None
        if old_value != new_value or (old is None) != (new is None):
            changes.append(FactChange(fact=name, before=old_value, after=new_value))
    return changes


def decide(
    campaign: Campaign,
    run: str,
    answers: dict[str, str] | None = None,
    *,
    replay: str | None = None,
    tree: DecisionTree | None = None,
) -> DecisionWalk:
    """Walk the campaign's tree over ``run`` and save the walk.

    With ``replay``, the saved walk's answers are walked again (``answers`` given win) and the
    facts whose values changed since are listed.
    """
    tree = tree or load_tree(campaign)
    given = dict(answers or {})
    previous = load_walk(campaign, run, replay) if replay is not None else None
    if previous is not None:
        given = {**previous.answers, **given}
    walk = walk_tree(campaign, tree, run, given)
    if previous is not None:
        walk = walk.model_copy(update={"replay_of": previous.walk, "changed_facts": _changes(previous, walk)})
    return save_walk(campaign, walk)
