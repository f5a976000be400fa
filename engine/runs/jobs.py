"""Where the engine keeps its non-training jobs: ``.tunedeck/jobs/<id>/``, one folder per job.

Each folder holds ``job.json`` (the ``JobStatus``, replaced atomically on every change), the
reaper's ``worker.pid`` / ``worker.exit``, the worker's ``stdout.log`` (a merge prints its summary
there as its last line) and ``worker.log`` (its stderr), and a bench job's ``completions.jsonl``.
As with runs, the files are the truth: a new engine re-adopts a running job from them and
settles one that ended while no engine watched.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.api import JobStatus
from engine.errors import RunNameError
from engine.store.campaign import Campaign, engine_paths
from engine.store.jsonl import write_text_atomic

JOB_FILE = "job.json"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "worker.log"
COMPLETIONS_FILE = "completions.jsonl"
_JOB_ID = re.compile(r"\d{8}-\d{6}-(merge|bench)-[0-9a-f]{6}")
KEEP_FINISHED = 200  # finished job folders kept; older ones are removed as new jobs arrive


def jobs_root(campaign: Campaign) -> Path:
    return engine_paths(campaign.root).root / "jobs"


def job_dir(campaign: Campaign, job_id: str) -> Path:
    """The job's folder; an id that is not one of ours (``../x``) is refused, never a path."""
    if not _JOB_ID.fullmatch(job_id):
        raise RunNameError(f"not a job id: {job_id!r}", field="job")
    return jobs_root(campaign) / job_id


def new_job_id(kind: str) -> str:
    """Sortable by submission time, unique: ``20261201-203301-merge-3fa2c1``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{secrets.token_hex(3)}"


def write_job(campaign: Campaign, job: JobStatus) -> None:
    folder = job_dir(campaign, job.id)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / JOB_FILE, job.model_dump_json(indent=1) + "\n")


def read_job(campaign: Campaign, job_id: str) -> JobStatus | None:
    try:
        return JobStatus.model_validate_json((job_dir(campaign, job_id) / JOB_FILE).read_bytes())
    except (OSError, ValidationError):
        return None


def read_jobs(campaign: Campaign) -> list[JobStatus]:
    """Every readable job, oldest first (a folder someone broke by hand is skipped)."""
    root = jobs_root(campaign)
    if not root.is_dir():
        return []
    folders = [f for f in sorted(root.iterdir()) if f.is_dir() and _JOB_ID.fullmatch(f.name)]
    jobs = [read_job(campaign, folder.name) for folder in folders]
    return sorted((job for job in jobs if job is not None), key=lambda job: (job.submitted, job.id))


def last_line(path: Path) -> str | None:
    """The last non-blank line of a log (read from its tail), or None."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 65536))
            lines = [line.strip() for line in handle.read().decode("utf-8", errors="replace").splitlines()]
    except OSError:
        return None
    lines = [line for line in lines if line]
    return lines[-1] if lines else None


def job_result(folder: Path) -> dict[str, Any] | None:
    """The JSON object a worker printed as its last stdout line (a merge's summary), if any."""
    line = last_line(folder / STDOUT_FILE)
    if line is None:
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def prune_finished(campaign: Campaign, keep: int = KEEP_FINISHED) -> None:
    """Remove the oldest ended jobs' folders beyond ``keep`` (queued and running jobs are never touched)."""
    ended = [job for job in read_jobs(campaign) if job.state in ("finished", "failed", "stopped")]
    for job in ended[: max(0, len(ended) - keep)]:
        shutil.rmtree(job_dir(campaign, job.id), ignore_errors=True)
