"""The TrainingArguments every method shares, from the run's [train] table."""

from __future__ import annotations

from typing import Any

from engine.runs.launch import PreparedRun
from engine.worker.models import has_cuda

# Methods whose batches hold ``input_ids`` for the Trainer to count. ORPO's and CPO's hold only
# prompt_/chosen_/rejected_input_ids: counting would log a warning every step and a false 0
# tokens/s. GRPO counts its prompts and completions itself (TRL's ``num_tokens``).
_TRAINER_COUNTS_TOKENS = frozenset({"sft", "dpo", "kto"})


def training_kwargs(prepared: PreparedRun, precision: str) -> dict[str, Any]:
    """Keyword arguments for TrainingArguments or any TRL config (DPOConfig, GRPOConfig, ...).

    Precision, ``use_cpu`` and activation checkpointing are set explicitly: every TRL config
    defaults to bf16 and gradient checkpointing, which fail (or only slow down) on a CPU.
    """
    train = prepared.config.train
    # GRPO scores its held-out rows with the eval-reward callback, not with Trainer.evaluate.
    has_eval = bool(prepared.eval_rows) and prepared.config.method.name != "grpo"
    warmup: float = train.warmup_steps if train.warmup_steps > 0 else train.warmup_ratio
    return dict(
        output_dir=str(prepared.paths.checkpoints),
        per_device_train_batch_size=train.batch_size,
        per_device_eval_batch_size=train.batch_size,
        gradient_accumulation_steps=train.grad_accum,
        learning_rate=train.learning_rate,
        lr_scheduler_type=train.lr_scheduler,
        warmup_steps=warmup,
        num_train_epochs=train.epochs,
        max_steps=train.max_steps if train.max_steps is not None else -1,
        weight_decay=train.weight_decay,
        max_grad_norm=train.max_grad_norm,
        optim=train.optim,
        seed=train.seed,
        logging_steps=train.logging_steps,
        # NaN losses are information (watch rules look for them): log them as they are.
        logging_nan_inf_filter=False,
        save_strategy="steps" if train.save_steps else "no",
        save_steps=train.save_steps or 500,
        save_total_limit=train.save_total_limit,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=(train.eval_steps or train.logging_steps) if has_eval else None,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not has_cuda(),
        activation_checkpointing=train.activation_checkpointing,
        # Under torchrun: every trainable (LoRA) parameter takes part in every forward.
        ddp_find_unused_parameters=False,
        remove_unused_columns=False,
        prediction_loss_only=True,
        include_num_input_tokens_seen="non_padding" if prepared.config.method.name in _TRAINER_COUNTS_TOKENS else "no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
