"""The next run's run.toml from a walk's config patch, edited with tomlkit so comments and layout stay.

``tunedeck run --from-decision RUN NEW_RUN``: RUN's run.toml, with its latest walk's
recommendation applied — ``config_unset`` keys removed, then ``config_patch`` merged in (a table
into a table key by key; a value or an array replaces, keeping the old value's inline comment),
``parent = RUN`` set — is checked against the run schema and written to runs/NEW_RUN/run.toml.
Refused, changing nothing: a NEW_RUN that exists, a walk without a recommendation, a patched
config that does not validate. It writes the file; it does not start the run.
"""

from __future__ import annotations

import shutil
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Item, Table

from engine.api import DecisionWalk, NextRun
from engine.decisions.saved_walks import load_walk
from engine.errors import ConfigError, ConflictError
from engine.store.campaign import Campaign
from engine.store.config import RunConfig, validate_toml
from engine.store.jsonl import write_text_atomic
from engine.store.names import validate_run_name


class NextRunRefused(ConflictError):
    """``--from-decision`` will not write the next run (exit status 1): nothing was changed."""


def _item(value: Any, old: Any) -> Any:
    """``value`` as a tomlkit item; an array of tables becomes [[...]] blocks, a scalar keeps the old comment."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        tables = tomlkit.aot()
        for entry in value:
            table = tomlkit.table()
            table.update(entry)
            tables.append(table)
        return tables
    item = tomlkit.item(value)
    if isinstance(old, Item) and not isinstance(old, Table | AoT) and old.trivia.comment:
        item.trivia.comment_ws, item.trivia.comment = old.trivia.comment_ws, old.trivia.comment
    return item


def merge_patch(table: Container | Table, patch: dict[str, Any]) -> None:
    """Merge ``patch`` into a tomlkit table in place: tables merge, everything else replaces."""
    for key, value in patch.items():
        old = table.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            merge_patch(old, value)  # type: ignore[arg-type]  # tomlkit's Table and InlineTable are dicts
        elif isinstance(value, dict):
            fresh = tomlkit.table()
            merge_patch(fresh, value)
            table[key] = fresh
        else:
            table[key] = _item(value, old)


def unset_keys(document: Container, keys: list[str]) -> None:
    """Remove dotted keys that are present (one absent is already what the patch asks)."""
    for key in keys:
        *parents, last = key.split(".")
        table: Any = document
        for part in parents:
            table = table.get(part) if isinstance(table, dict) else None
        if isinstance(table, dict) and last in table:
            del table[last]


def patched_text(source: str, walk: DecisionWalk, parent: str) -> str:
    """``source`` (a run.toml) with the walk's recommendation applied, plus a comment saying where it came from."""
    recommendation = walk.recommendation
    assert recommendation is not None
    document = tomlkit.parse(source)
    unset_keys(document, recommendation.config_unset)  # first: a [method] table unset, then method = "sft" set
    merge_patch(document, recommendation.config_patch)
    if "name" in document:
        del document["name"]  # the folder names the run (runs/<run>/run.toml)
    document["parent"] = _item(parent, document.get("parent"))
    header = f"# from tunedeck decide {parent} (walk {walk.walk}): {recommendation.id} - {recommendation.title}\n"
    return header + tomlkit.dumps(document)


def next_run(campaign: Campaign, run: str, new_run: str) -> NextRun:
    """Write runs/<new_run>/run.toml from ``run``'s run.toml and its latest walk's recommendation."""
    validate_run_name(new_run, field="NEW_RUN")
    campaign.load_run(run)
    target = campaign.run(new_run)
    if target.root.exists():
        raise NextRunRefused(f"run {new_run!r} already exists: choose another name", path=target.root)
    walk = load_walk(campaign, run, "latest")
    if walk.recommendation is None:
        raise NextRunRefused(
            f"walk {walk.walk} of {run} reached no recommendation ({walk.stopped}): "
            f"answer it with 'tunedeck decide {run} --answer KEY=CHOICE'",
            path=campaign.run(run).root / "decisions" / f"{walk.walk}.json",
        )
    source = campaign.run(run).run_toml.read_text(encoding="utf-8")
    try:
        text = patched_text(source, walk, run)
    except TOMLKitError as exc:
        raise ConfigError(f"cannot apply the patch: {exc}", path=campaign.run(run).run_toml) from None
    try:
        validate_toml(target.run_toml, text, RunConfig)
    except ConfigError as exc:
        raise ConfigError(
            f"{walk.recommendation.id}'s config_patch makes a run.toml that does not validate: {exc.message}",
            path=target.run_toml, line=exc.line, field=exc.field,
        ) from None  # fmt: skip
    try:
        target.root.mkdir(parents=True)  # exclusive: a run made meanwhile by another process wins
    except FileExistsError:
        raise NextRunRefused(f"run {new_run!r} already exists: choose another name", path=target.root) from None
    try:
        write_text_atomic(target.run_toml, text)
    except BaseException:
        shutil.rmtree(target.root, ignore_errors=True)
        raise
    relative = target.run_toml.relative_to(campaign.root)
    return NextRun(
        run=new_run, parent=run, walk=str(walk.walk), recommendation=walk.recommendation.id,
        run_toml=str(relative), start=f"tunedeck run {relative}",
    )  # fmt: skip
