"""The training worker: ``python -m engine.worker RUN_DIR [--resume]``.

Reads runs/<run>/run.toml, trains a LoRA adapter with the trainer of the run's method
(tunedeck's own for sft, TRL's for dpo, orpo, kto, cpo and grpo: engine.worker.methods) and writes
metrics.jsonl, events.jsonl, checkpoints/ and, when training completes, adapter/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import PrinterCallback, set_seed

from engine.runs.launch import prepare_run, train_command
from engine.store.atomic import replace_folder
from engine.store.campaign import Campaign, record_event
from engine.store.checkpoints import newest_complete_checkpoint
from engine.worker import runtime
from engine.worker.callbacks import LifecycleCallback, MetricsCallback, StopRequestCallback
from engine.worker.methods import build_trainer
from engine.worker.models import (
    attach_lora,
    has_cuda,
    load_base_model,
    load_tokenizer,
    resolve_precision,
)
from engine.worker.tiny_base import ensure_tiny_base


def _save_adapter_atomically(model: Any, tokenizer: Any, target: Path) -> None:
    """Write the final adapter to a temporary folder, then rename it into place."""
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    replace_folder(staging, target)


# Set to 1 to run a ``gpus = N`` run on a machine without CUDA as N CPU processes that talk over
# gloo: the same torchrun launch, DDP and collective code paths as on N GPUs, only slower. For
# debugging a multi-GPU run.toml on a laptop or in CI; without it such a run is refused.
CPU_DISTRIBUTED_ENV = "TUNEDECK_ALLOW_CPU_DISTRIBUTED"


def cpu_distributed_allowed() -> bool:
    """Whether ``gpus > 1`` may run as CPU processes over gloo (TUNEDECK_ALLOW_CPU_DISTRIBUTED=1, no CUDA)."""
    return os.environ.get(CPU_DISTRIBUTED_ENV, "") == "1" and not has_cuda()


def _check_gpus(run_dir: Path, gpus: int) -> None:
    """Refuse a run that asks for more GPUs than this machine has (unless CPU processes are allowed)."""
    available = torch.cuda.device_count()
    if available < gpus and not cpu_distributed_allowed():
        from engine.errors import ConfigError

        hint = f" (set {CPU_DISTRIBUTED_ENV}=1 to run it as CPU processes over gloo)" if available == 0 else ""
        raise ConfigError(
            f"asks for {gpus} GPUs, this machine has {available}{hint}",
            path=run_dir / "run.toml",
            field="train.gpus",
        )


def _relaunch_distributed(run_dir: Path, resume: bool, gpus: int) -> int:
    """Re-run this worker under torchrun when the run wants several GPUs."""
    command = train_command(run_dir, resume=resume, gpus=gpus)
    os.execvp(command[0], command)
    return 0  # not reached


def train(run_dir: Path, *, resume: bool) -> int:
    """Train the run in ``run_dir``; returns the process exit status."""
    run_dir = run_dir.resolve()
    campaign = Campaign.open(run_dir.parent.parent)
    prepared = prepare_run(campaign, run_dir.name)
    config, paths = prepared.config, prepared.paths
    if config.train.gpus > 1:
        # Checked in every rank too: the CLI and the service launch torchrun directly.
        _check_gpus(run_dir, config.train.gpus)
        if not runtime.in_torchrun():
            return _relaunch_distributed(run_dir, resume, config.train.gpus)
    precision = resolve_precision(config, paths.run_toml)
    runtime.quiet_transformers()
    ensure_tiny_base(campaign, prepared.base)  # a [models] tiny folder is built on first use

    # Seed before the adapter exists: LoRA's A matrices are drawn when it is attached, and
    # Trainer only seeds later, so without this two runs of one run.toml would differ.
    set_seed(config.train.seed)
    tokenizer = load_tokenizer(prepared.base)
    model = attach_lora(load_base_model(prepared.base, config, precision, paths.run_toml), config, paths.run_toml)
    stop = StopRequestCallback(paths.stop_request, handle_sigterm=True)
    callbacks = [MetricsCallback(paths.metrics), LifecycleCallback(paths.events), stop]
    trainer = build_trainer(prepared, precision, model, tokenizer, callbacks)
    trainer.remove_callback(PrinterCallback)
    checkpoint = newest_complete_checkpoint(paths.checkpoints) if resume else None
    is_main = trainer.is_world_process_zero()
    if is_main and resume:
        record_event(paths.events, "resumed", checkpoint=str(checkpoint) if checkpoint else None)

    started = time.time()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    step = trainer.state.global_step
    if not is_main:
        return 0
    if stop.stopped_at is not None:  # decided by all ranks together, at this step
        saved = newest_complete_checkpoint(paths.checkpoints)
        record_event(paths.events, "stopped", step=step, reason=stop.reason, checkpoint=str(saved) if saved else None)
        paths.stop_request.unlink(missing_ok=True)
        return 0
    _save_adapter_atomically(trainer.model, tokenizer, paths.adapter)
    paths.stop_request.unlink(missing_ok=True)  # one that came after the last step is moot
    record_event(
        paths.events,
        "finished",
        step=step,
        train_loss=output.training_loss,
        runtime_s=round(time.time() - started, 2),
        adapter=str(paths.adapter),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and train; failures are recorded in events.jsonl before exiting."""
    parser = argparse.ArgumentParser(prog="python -m engine.worker", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint")
    args = parser.parse_args(argv)
    try:
        return train(args.run_dir, resume=args.resume)
    except Exception as exc:
        from engine.errors import TunedeckError

        # Recorded so `tunedeck status` can say why: a user's error as its one line, ours with its type.
        said = str(exc) if isinstance(exc, TunedeckError) else f"{type(exc).__name__}: {exc}"
        events = args.run_dir / "events.jsonl"
        if events.parent.is_dir() and int(os.environ.get("RANK", "0")) == 0:
            record_event(events, "failed", error=said[:2000])
        raise


if __name__ == "__main__":
    runtime.run_main(lambda: main(sys.argv[1:]), hard_exit=runtime.in_torchrun())
