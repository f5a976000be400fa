"""Checks a run before any process starts, and builds the command lines of worker processes.

Everything a user can get wrong (run.toml, names, dataset lines, the base model folder) is
checked here, without torch, so a bad run is refused before anything is written.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigError, ConflictError
from engine.store.campaign import Campaign, RunPaths
from engine.store.config import RunConfig
from engine.store.datasets import PreferenceRow, PromptRow, Row, load_method_rows, split_eval
from engine.store.method_config import check_method_run
from engine.store.metrics import last_step


@dataclass(frozen=True)
class PreparedRun:
    """A run whose config, data and base model have all been checked."""

    campaign: Campaign
    name: str
    paths: RunPaths
    config: RunConfig
    base: Path
    # Row for sft, PreferenceRow for dpo/orpo/kto/cpo, PromptRow for grpo (one kind per run).
    train_rows: list[Row] | list[PreferenceRow] | list[PromptRow]
    eval_rows: list[Row] | list[PreferenceRow] | list[PromptRow]


def prepare_run(
    campaign: Campaign, name: str, *, config: RunConfig | None = None, source: Path | None = None
) -> PreparedRun:
    """Validate run ``name`` end to end (its run.toml, or ``config`` read from ``source``).

    Raises a one-line ``TunedeckError``; reads files but never writes one.
    """
    paths = campaign.run(name)
    if config is None:
        config = campaign.load_run(name)
    source = source or paths.run_toml
    if config.dataset is None:
        raise ConfigError(
            "required to train: the training JSONL, relative to the campaign", path=source, field="dataset"
        )
    base = campaign.base_model(config, source=source)
    if not (base / "config.json").is_file() and base not in tiny_model_folders(campaign):
        raise ConfigError(_not_a_model(campaign, base), path=source, field="base")
    # Each method reads its own row shape; a GRPO run's rows must hold every field its rewards read.
    columns = check_method_run(campaign.root, config, source)
    method = config.method.name
    rows = load_method_rows(campaign.resolve(config.dataset), method, columns=columns, source=source)
    if config.eval_dataset is not None:
        eval_path = campaign.resolve(config.eval_dataset)
        eval_rows = load_method_rows(eval_path, method, columns=columns, source=source, field="eval_dataset")
        train_rows = rows
    else:
        train_rows, eval_rows = split_eval(rows, config.eval_fraction, config.train.seed)
    return PreparedRun(campaign, name, paths, config, base, train_rows, eval_rows)


def tiny_model_folders(campaign: Campaign) -> frozenset[Path]:
    """The folders campaign.toml's ``[models] tiny`` declares: the training worker builds them when missing."""
    return frozenset(campaign.resolve(folder) for folder in campaign.config.models.tiny)


def _not_a_model(campaign: Campaign, base: Path) -> str:
    """Why ``base`` cannot be trained on, with what to do when it is a run's merged model not made yet."""
    message = f"not a model folder (no config.json): {base}"
    parent = base.parent
    if base.name == "merged" and parent.parent == campaign.runs_dir and (parent / "run.toml").is_file():
        run = parent.name
        return f"{message}; train run {run!r} and merge it first (tunedeck merge {run})"
    return message


def python_module(module: str, *args: str) -> list[str]:
    """``python -P -m module args``: -P keeps the working folder off sys.path, so a campaign's
    own ``datasets/`` folder can never shadow the ``datasets`` library a worker imports."""
    return [sys.executable, "-P", "-m", module, *args]


def train_command(run_dir: Path, *, resume: bool = False, gpus: int = 1) -> list[str]:
    """The command that trains a run: the worker module, under torchrun when gpus > 1."""
    worker = [str(run_dir)] + (["--resume"] if resume else [])
    if gpus > 1:
        # torch's own launcher, never a home-made one.
        launcher = ["--standalone", f"--nproc_per_node={gpus}", "-m", "engine.worker"]
        return python_module("torch.distributed.run", *launcher, *worker)
    return python_module("engine.worker", *worker)


def merge_command(run_dir: Path, *, checkpoint: int | None = None) -> list[str]:
    """The command that merges a run's adapter into its base model."""
    extra = ["--checkpoint", str(checkpoint)] if checkpoint is not None else []
    return python_module("engine.worker.merge", str(run_dir), *extra)


def bench_command(
    run_dir: Path, suite: Path, out: Path, *, samples: int = 1, checkpoint: int | None = None
) -> list[str]:
    """The command that generates a suite's answers with a run's model (``out``: completions JSONL)."""
    extra = ["--checkpoint", str(checkpoint)] if checkpoint is not None else []
    return python_module(
        "engine.worker.bench", str(run_dir), "--suite", str(suite), "--out", str(out), "--samples", str(samples), *extra
    )


def check_extend(run: str, paths: RunPaths, max_steps: int | None, *, extend: bool) -> None:
    """A finished run resumes only when asked to (``--extend``) and only when it has steps left.

    Resuming a finished run once trained it one step past its end and replaced the adapter
    under an existing merged/ and bench results. Raises ``ConflictError`` without ``extend``,
    ``ConfigError`` when ``[train] max_steps`` was not raised above the steps already trained.
    """
    done = last_step(paths.metrics)
    if not extend:
        raise ConflictError(
            f"run {run!r} has finished (step {done}); resuming would replace its adapter. To train it "
            "further, raise [train] max_steps in its run.toml and resume with --extend",
            path=paths.root,
        )
    if max_steps is not None and max_steps <= done:
        raise ConfigError(
            f"is {max_steps}, not above the {done} steps run {run!r} has already trained: raise it to extend",
            path=paths.run_toml,
            field="train.max_steps",
        )
