"""The campaign on disk: campaign.toml, runs/<run>/ and the files inside a run.

The files are the truth; everything else (DuckDB tables, the service's state) is rebuilt
from them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, NotFoundError
from engine.store.config import CampaignConfig, RunConfig, load_toml
from engine.store.jsonl import append_jsonl
from engine.store.names import is_valid_run_name, validate_run_name

CAMPAIGN_FILE = "campaign.toml"
RUN_FILE = "run.toml"


@dataclass(frozen=True)
class RunPaths:
    """Where a run keeps each of its files."""

    root: Path

    @property
    def run_toml(self) -> Path:
        return self.root / RUN_FILE

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def system(self) -> Path:
        return self.root / "system.jsonl"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def merged(self) -> Path:
        return self.root / "merged"

    @property
    def stop_request(self) -> Path:
        """Created to ask the worker to checkpoint and stop; holds the reason as JSON."""
        return self.root / "stop.request"

    @property
    def worker_log(self) -> Path:
        return self.root / "worker.log"


def record_event(events_file: Path, event: str, **fields: Any) -> dict[str, Any]:
    """Append one lifecycle event (``{"ts", "event", ...}``) to an events.jsonl file."""
    record: dict[str, Any] = {"ts": round(time.time(), 3), "event": event, **fields}
    append_jsonl(events_file, record)
    return record


class Campaign:
    """A campaign folder with a valid campaign.toml."""

    def __init__(self, root: Path, config: CampaignConfig) -> None:
        self.root = root
        self.config = config

    @classmethod
    def open(cls, directory: str | Path) -> Campaign:
        """Open the campaign in ``directory``; a clear error when there is none."""
        root = Path(directory).resolve()
        path = root / CAMPAIGN_FILE
        if not path.is_file():
            raise NotFoundError(
                f"no {CAMPAIGN_FILE} here: pass --campaign DIR or run from a campaign folder", path=root
            )
        return cls(root, load_toml(path, CampaignConfig))

    @classmethod
    def create(cls, directory: str | Path, name: str, *, base: str | None = None) -> Campaign:
        """Create a campaign folder with a minimal campaign.toml (refusing to overwrite one)."""
        root = Path(directory).resolve()
        root.mkdir(parents=True, exist_ok=True)
        path = root / CAMPAIGN_FILE
        if path.exists():
            raise ConfigError("already exists", path=path)
        lines = [f"name = {_toml_string(name)}"]
        if base is not None:
            lines.append(f"base = {_toml_string(base)}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        (root / "runs").mkdir(exist_ok=True)
        return cls.open(root)

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run(self, name: str) -> RunPaths:
        """The paths of run ``name`` (validated; the folder may not exist yet)."""
        validate_run_name(name)
        return RunPaths(self.runs_dir / name)

    def run_names(self) -> list[str]:
        """Names of the runs that have a run.toml, sorted."""
        if not self.runs_dir.is_dir():
            return []
        # A folder whose name is not a valid run name (made by hand) is not a run: skipping it
        # keeps one stray folder from breaking every listing and the engine's start.
        names = (p.parent.name for p in self.runs_dir.glob(f"*/{RUN_FILE}"))
        return sorted(name for name in names if is_valid_run_name(name))

    def load_run(self, name: str) -> RunConfig:
        """Parse and validate runs/<name>/run.toml."""
        paths = self.run(name)
        if not paths.run_toml.is_file():
            raise NotFoundError(f"no run named {name!r} in this campaign", path=paths.run_toml)
        return load_toml(paths.run_toml, RunConfig)

    def resolve(self, relative: str | Path) -> Path:
        """A path from a config file, taken relative to the campaign folder."""
        return (self.root / Path(relative).expanduser()).resolve()

    def base_model(self, run: RunConfig, *, source: Path | None = None) -> Path:
        """The base model folder of a run (its own ``base`` or the campaign's)."""
        base = run.base or self.config.base
        if base is None:
            raise ConfigError("no base model: set 'base' in run.toml or campaign.toml", path=source, field="base")
        return self.resolve(base)


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` with mode 0700 (used for folders that hold sockets or tokens)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


# AF_UNIX paths are limited to 108 bytes on Linux (107 usable).
MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class EnginePaths:
    """The service's private folder in a campaign (mode 0700): socket, pid, token, log."""

    root: Path

    @property
    def socket(self) -> Path:
        """``.tunedeck/engine.sock``, or — when that path is too long for a Unix socket — a short
        path in a private per-user folder under /tmp named by a hash of the campaign's path."""
        inside = self.root / "engine.sock"
        if len(str(inside)) <= MAX_SOCKET_PATH:
            return inside
        digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:20]
        return Path(tempfile.gettempdir()) / f"tunedeck-{os.getuid()}" / f"{digest}.sock"

    @property
    def pid(self) -> Path:
        return self.root / "engine.pid"

    @property
    def token(self) -> Path:
        return self.root / "token"

    @property
    def log(self) -> Path:
        return self.root / "engine.log"

    @property
    def lock(self) -> Path:
        """Held (flock) by the campaign's one engine for its whole life."""
        return self.root / "engine.lock"


def engine_paths(campaign_root: Path) -> EnginePaths:
    """Where the engine of the campaign at ``campaign_root`` keeps its files."""
    return EnginePaths(campaign_root / ".tunedeck")
