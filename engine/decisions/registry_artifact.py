"""What a promote points production at: a run's merged model or its final adapter, checked and hashed.

``merged`` is ``runs/<run>/merged/`` and must verify against its manifest.json
(engine.store.merged); ``adapter`` is ``runs/<run>/adapter/``, the final LoRA adapter the training
worker renames into place when a run completes, served on the run's base model. The content hash
is a sha256 over the sorted ``(relative path, sha256 of the file)`` pairs of the folder's files;
for a merged model those are its manifest's, which ``merged_problem`` has just checked against
the files (so a model of many gigabytes is read once, not twice).

A run whose results were only imported (``tunedeck bench import``, sessions/bd6) has neither
folder: its promotion is refused with what to do, since there is no model to point at.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from engine.store.campaign import Campaign
from engine.store.checkpoints import has_weights
from engine.store.merged import MANIFEST, file_hashes, merged_problem
from engine.store.safe_paths import refuse_symlinks


@dataclass(frozen=True)
class Artifact:
    """A folder to serve: its path relative to the campaign and its content hash."""

    path: str
    sha256: str


class ArtifactRefused(Exception):
    """The artifact is missing or not whole; the message says what to do."""


def folder_digest(hashes: dict[str, str]) -> str:
    """One sha256 over a folder's per-file hashes, in path order."""
    digest = hashlib.sha256()
    for name in sorted(hashes):
        digest.update(f"{name}\0{hashes[name]}\n".encode())
    return digest.hexdigest()


def relative(campaign: Campaign, folder: Path) -> str:
    """``folder`` relative to the campaign, as production.json records it."""
    return Path(os.path.relpath(folder, campaign.root)).as_posix()


def locate(campaign: Campaign, run: str, kind: str) -> Artifact:
    """The run's ``merged`` or ``adapter`` folder, verified and hashed; ``ArtifactRefused`` when unusable."""
    paths = campaign.run(run)
    folder = refuse_symlinks(paths.merged if kind == "merged" else paths.adapter)
    shown = relative(campaign, folder)
    if not folder.is_dir():
        if kind == "merged":
            raise ArtifactRefused(
                f"{shown} does not exist: run 'tunedeck merge {run}' first, "
                "or promote the adapter with --artifact adapter"
            )
        raise ArtifactRefused(
            f"{shown} does not exist: {run} has no final adapter (it has not finished training, "
            f"or its results were imported): see 'tunedeck status {run}'"
        )
    if kind == "merged":
        problem = merged_problem(folder)
        if problem is not None:
            raise ArtifactRefused(f"{shown} is not a whole merged model ({problem}): run 'tunedeck merge {run}' again")
        files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
        return Artifact(shown, folder_digest(files))
    if not has_weights(folder):
        raise ArtifactRefused(f"{shown} holds no adapter weights (adapter_model.safetensors)")
    return Artifact(shown, folder_digest(file_hashes(folder)))


def recheck(campaign: Campaign, artifact: str | None, sha256: str | None) -> str | None:
    """A warning when a folder production goes back to is gone or has changed since it was promoted."""
    if artifact is None:
        return None
    folder = (campaign.root / artifact).resolve()
    if campaign.root not in folder.parents:
        return f"{artifact} is outside the campaign: not checked"
    if not folder.is_dir():
        return f"{artifact} is no longer on disk: production.json points at it, but serving it will fail"
    if sha256 is None:
        return None
    hashes = file_hashes(folder)
    if folder_digest(hashes) != sha256:
        return f"{artifact} has changed since it was promoted (its files no longer hash to {sha256[:12]})"
    return None
