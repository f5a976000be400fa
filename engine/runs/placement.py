"""A new run from a run.toml: name it, check it end to end, and place it at runs/<run>/run.toml.

The CLI's ``tunedeck run RUN_TOML`` and the service's ``POST /runs`` (the TUI's "new run") do the
same thing through ``place_run``: everything is checked before anything is written, so a bad
run.toml changes nothing on disk, and a run that already exists is never overwritten.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import ConfigError
from engine.runs.launch import PreparedRun, prepare_run
from engine.runs.run_state import run_status
from engine.store.campaign import Campaign
from engine.store.config import RunConfig, load_toml
from engine.store.jsonl import write_text_atomic
from engine.store.names import validate_run_name


def run_name_for(toml_path: Path, config: RunConfig, campaign: Campaign) -> str:
    """The run a run.toml describes: its runs/<run>/ folder, else its ``name``, else the file's stem."""
    if toml_path.parent.parent == campaign.runs_dir:
        name = toml_path.parent.name
    else:
        name = config.name or (toml_path.stem if toml_path.name != "run.toml" else toml_path.parent.name)
    return validate_run_name(name, source=str(toml_path), field="name")


def place_run(campaign: Campaign, source: Path) -> PreparedRun:
    """Validate ``source`` and copy it to runs/<run>/run.toml (unless it is that file already)."""
    source = source.resolve()
    config = load_toml(source, RunConfig)
    name = run_name_for(source, config, campaign)
    paths = campaign.run(name)
    text = source.read_text(encoding="utf-8")
    placed = source == paths.run_toml.resolve()
    # A run that failed before it trained (a bad setting, a missing file) takes its fixed run.toml.
    retry = paths.run_toml.exists() and not paths.metrics.exists() and run_status(name, paths).state == "failed"
    if not placed and not retry and paths.run_toml.exists() and paths.run_toml.read_text(encoding="utf-8") != text:
        raise ConfigError(f"run {name!r} already exists with a different run.toml", path=paths.run_toml)
    if paths.metrics.exists():
        raise ConfigError(f"run {name!r} has already trained; use 'tunedeck resume {name}'", path=paths.metrics)
    prepared = prepare_run(campaign, name, config=config, source=source)
    paths.root.mkdir(parents=True, exist_ok=True)
    if not placed:
        write_text_atomic(paths.run_toml, text)
    return prepared


def run_toml_inside(campaign: Campaign, relative: str) -> Path:
    """A run.toml named by a client of the service: a real file inside the campaign, never outside it."""
    root = campaign.root.resolve()
    try:
        path = campaign.resolve(relative)
        inside, is_file = root in path.parents, path.is_file()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte: what the OS refuses, said in a line
        raise ConfigError(
            f"not a usable path ({exc.__class__.__name__}): {relative[:80]}", path=root, field="run_toml"
        ) from None
    if not inside:
        raise ConfigError(f"not inside the campaign folder: {relative}", path=root, field="run_toml")
    if not is_file:
        raise ConfigError(f"no such file: {relative}", path=root, field="run_toml")
    return path
