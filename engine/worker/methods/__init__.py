"""One trainer per ``method``: tunedeck's own for SFT, TRL's for DPO, ORPO, KTO, CPO and GRPO.

``build_trainer`` is the one place the worker asks for a trainer; every trainer gets the same
tunedeck callbacks (metrics.jsonl, lifecycle events, stop requests) and the same
TrainingArguments settings (precision, CPU handling, schedule, checkpoints), so a run of any
method is launched, watched, stopped, resumed and merged the same way.
"""

from __future__ import annotations

from typing import Any

from transformers import Trainer, TrainerCallback

from engine.runs.launch import PreparedRun
from engine.worker.methods.arguments import training_kwargs


def build_trainer(
    prepared: PreparedRun, precision: str, model: Any, tokenizer: Any, callbacks: list[TrainerCallback]
) -> Trainer:
    """The trainer for the run's method, with tunedeck's callbacks attached."""
    method = prepared.config.method.name
    kwargs = training_kwargs(prepared, precision)
    if method == "sft":
        from engine.worker.methods.sft import sft_trainer

        return sft_trainer(prepared, kwargs, model, tokenizer, callbacks)
    if method == "grpo":
        from engine.worker.methods.grpo import grpo_trainer

        return grpo_trainer(prepared, kwargs, model, tokenizer, callbacks)
    from engine.worker.methods.preference import preference_trainer

    return preference_trainer(prepared, kwargs, model, tokenizer, callbacks)
