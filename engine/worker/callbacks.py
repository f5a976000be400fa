"""Trainer callbacks, one per concern, each writing only on the main process.

``TunedeckCallback`` bundles them for a user's own HF/TRL Trainer script:

    trainer.add_callback(TunedeckCallback("path/to/campaign", "my-run"))

and the run then appears in the campaign like any other.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from engine.store.campaign import RunPaths, record_event
from engine.store.jsonl import JsonlWriter
from engine.store.locks import run_writer_lock
from engine.store.names import validate_run_name

LOCK_WAIT_S = 30.0


class MetricsCallback(TrainerCallback):
    """Every trainer log becomes one line of metrics.jsonl: step, ts, and the log's keys as named."""

    def __init__(self, metrics_path: str | Path) -> None:
        self.writer = JsonlWriter(metrics_path)
        # Held while training, so an import that would replace metrics.jsonl under us is refused.
        self.lock = run_writer_lock(Path(metrics_path).parent)
        self._last_tokens: tuple[float, int] | None = None

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        now = time.time()
        record: dict[str, Any] = {"step": state.global_step, "ts": round(now, 3), **logs}
        # The Trainer's count, or GRPO's own (TRL logs its running total as ``num_tokens``).
        tokens = logs.get("num_input_tokens_seen", logs.get("num_tokens"))
        if isinstance(tokens, int | float) and "loss" in logs:
            if self._last_tokens is not None and now > self._last_tokens[0]:
                seen = tokens - self._last_tokens[1]
                record["tokens_per_second"] = round(seen / (now - self._last_tokens[0]), 1)
            self._last_tokens = (now, int(tokens))
        self.writer.write(record)

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        # Tokens/s is measured from the start of this session, resumed or not.
        self._last_tokens = (time.time(), int(state.num_input_tokens_seen or 0))
        if state.is_world_process_zero:
            self.lock.acquire(wait_s=LOCK_WAIT_S)  # an import in progress finishes first

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.writer.close()
        self.lock.release()


class LifecycleCallback(TrainerCallback):
    """Lifecycle events to events.jsonl: started and each checkpoint."""

    def __init__(self, events_path: str | Path) -> None:
        self.events_path = Path(events_path)

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.is_world_process_zero:
            record_event(
                self.events_path,
                "started",
                step=state.global_step,
                max_steps=state.max_steps,
                pid=os.getpid(),
            )

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            folder = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
            record_event(self.events_path, "checkpoint", step=state.global_step, path=str(folder))


class StopRequestCallback(TrainerCallback):
    """Honours a stop request (the run's stop.request file, or SIGTERM): checkpoint, then end.

    Checked at every step end; a file stat costs microseconds against a step's milliseconds.
    Under torchrun the decision is collective: every rank's own view (file seen, SIGTERM
    received) is all-reduced with MAX at each step end, so all ranks stop, and save, at the same
    step. A rank deciding alone would leave the others waiting forever in their next gradient
    all-reduce. ``stopped_at`` is the step of that decision (None when training was not stopped).
    """

    _FILE, _SIGTERM = 1, 2  # what a rank saw, in the all-reduced flag; the larger one wins

    def __init__(self, request_path: str | Path, *, handle_sigterm: bool = False) -> None:
        self.request_path = Path(request_path)
        self.reason: str | None = None
        self.stopped_at: int | None = None
        if handle_sigterm:
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: object) -> None:
        self.reason = self.reason or "SIGTERM"

    def requested(self) -> bool:
        """True once this process has seen a stop request (the reason is kept in ``self.reason``)."""
        if self.reason is None and self.request_path.exists():
            self.reason = _read_reason(self.request_path)
        return self.reason is not None

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        seen = (self._SIGTERM if self.reason == "SIGTERM" else self._FILE) if self.requested() else 0
        seen = _max_over_ranks(seen, args)
        if not seen:
            return
        if self.reason is None:  # another rank saw it first
            self.reason = "SIGTERM" if seen == self._SIGTERM else _read_reason(self.request_path)
        self.stopped_at = state.global_step
        control.should_save = True
        control.should_training_stop = True


def _max_over_ranks(value: int, args: TrainingArguments) -> int:
    """``value``'s maximum over every process of a torch.distributed job (``value`` itself when alone)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return value
    flag = torch.tensor([value], dtype=torch.int32, device=args.device)  # NCCL needs a CUDA tensor
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item())


def _read_reason(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, json.JSONDecodeError):
        return "stop requested"
    reason = data.get("reason") if isinstance(data, dict) else None
    return str(reason) if reason else "stop requested"


class TunedeckCallback(TrainerCallback):
    """Metrics, lifecycle and stop requests for a run of ``campaign``, for any HF/TRL Trainer.

    Creates ``runs/<run>/`` (and a run.toml recording where it came from) when needed.
    """

    def __init__(self, campaign: str | Path, run: str) -> None:
        root = Path(campaign)
        if not (root / "campaign.toml").is_file():
            raise FileNotFoundError(f'{root}: no campaign.toml (create one with: name = "...")')
        paths = RunPaths(root / "runs" / validate_run_name(run))
        paths.root.mkdir(parents=True, exist_ok=True)
        if not paths.run_toml.exists():
            paths.run_toml.write_text(f'name = "{run}"\nimported_from = "external Trainer script"\n', encoding="utf-8")
        self.paths = paths
        self.stop = StopRequestCallback(paths.stop_request)
        self.parts: list[TrainerCallback] = [
            MetricsCallback(paths.metrics),
            LifecycleCallback(paths.events),
            self.stop,
        ]

    def _each(self, event: str, *args: Any, **kwargs: Any) -> None:
        for part in self.parts:
            getattr(part, event)(*args, **kwargs)

    def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
        self._each("on_train_begin", *args, **kwargs)

    def on_log(self, *args: Any, **kwargs: Any) -> None:
        self._each("on_log", *args, **kwargs)

    def on_save(self, *args: Any, **kwargs: Any) -> None:
        self._each("on_save", *args, **kwargs)

    def on_step_end(self, *args: Any, **kwargs: Any) -> None:
        self._each("on_step_end", *args, **kwargs)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._each("on_train_end", args, state, control, **kwargs)
        if state.is_world_process_zero:
            if self.stop.stopped_at is not None:
                record_event(self.paths.events, "stopped", step=state.global_step, reason=self.stop.reason)
            else:
                record_event(self.paths.events, "finished", step=state.global_step)
