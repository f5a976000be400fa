"""Building a campaign's declared tiny base model on first use (campaign.toml ``[models] tiny``).

A committed campaign cannot hold model weights, so it names the folder instead and the first
training worker that needs it builds it: under a lock beside the folder (two runs started at once
build it once; the second waits and finds it), into a temporary folder renamed into place
(engine.store.atomic), so the folder is either absent or whole. Only declared folders are built:
a base path with a typo stays an error naming that path (engine.runs.launch.prepare_run).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from engine.errors import ConfigError
from engine.runs.launch import tiny_model_folders
from engine.store.atomic import replace_folder
from engine.store.campaign import CAMPAIGN_FILE, Campaign
from engine.store.locks import ExclusiveLock

BUILD_WAIT_S = 600.0  # another worker building the same folder takes seconds; this is a generous bound


def ensure_tiny_base(campaign: Campaign, base: Path) -> bool:
    """Build ``base`` when campaign.toml declares it as a tiny model and it is missing; True when built here."""
    if (base / "config.json").is_file() or base not in tiny_model_folders(campaign):
        return False
    base.parent.mkdir(parents=True, exist_ok=True)
    lock = ExclusiveLock(base.parent / f".{base.name}.build.lock", what=f"another worker is building {base}")
    lock.acquire(wait_s=BUILD_WAIT_S)
    try:
        if (base / "config.json").is_file():  # built by the worker we waited for
            return False
        if base.exists():
            raise ConfigError(
                f"declared in [models] tiny, but {base} exists without a config.json: move it away and tunedeck "
                "builds the tiny model there",
                path=campaign.root / CAMPAIGN_FILE,
                field="models.tiny",
            )
        _build(base)
    finally:
        lock.release()
    return True


def _build(base: Path) -> None:
    """Write the tiny model to a temporary folder beside ``base``, then rename it into place."""
    from engine.worker.tinymodel import build_tiny_model

    print(f"building the tiny model declared in campaign.toml [models] tiny: {base}", file=sys.stderr, flush=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{base.name}.", suffix=".partial", dir=base.parent))
    try:
        build_tiny_model(staging)
        replace_folder(staging, base)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
