"""SFT: tunedeck's own Trainer (token-weighted loss, KL to base), on rows encoded with the prompt masked."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback, TrainingArguments

from engine.runs.launch import PreparedRun
from engine.store.datasets import Row
from engine.worker.encoding import PaddingCollator, encode_rows
from engine.worker.trainer import TunedeckTrainer


def sft_trainer(
    prepared: PreparedRun, kwargs: dict[str, Any], model: Any, tokenizer: Any, callbacks: list[TrainerCallback]
) -> TunedeckTrainer:
    """The SFT trainer of a run."""
    config = prepared.config
    train_rows: list[Row] = [r for r in prepared.train_rows if isinstance(r, Row)]
    eval_rows: list[Row] = [r for r in prepared.eval_rows if isinstance(r, Row)]
    train_set = encode_rows(tokenizer, train_rows, config, train=True)
    eval_set = encode_rows(tokenizer, eval_rows, config, train=False) if eval_rows else None
    return TunedeckTrainer(
        model=model,
        args=TrainingArguments(**kwargs),
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=PaddingCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=callbacks,
        kl_lambda=config.kl.lam,
    )
