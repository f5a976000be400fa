"""DPO, ORPO, KTO and CPO: TRL's trainers on preference rows, with a peft LoRA adapter.

The adapter is attached by tunedeck (engine.worker.models.attach_lora, the same as SFT), so DPO
and KTO take their reference model as the same network with the adapter disabled: no second
copy of the base in memory. Rows become TRL's standard format: strings for a text prompt, message
lists (the answer as one assistant message) for a conversation. KTO gets the pairs unpaired:
chosen is desirable, rejected undesirable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from datasets import Dataset  # type: ignore[import-untyped]
from transformers import Trainer, TrainerCallback

from engine.runs.launch import PreparedRun
from engine.store.datasets import PreferenceRow, replicate
from engine.store.method_config import CpoMethod, DpoMethod, KtoMethod, OrpoMethod


def _prompt(row: PreferenceRow) -> Any:
    if row.messages is None:
        return row.prompt
    return [{"role": role, "content": content} for role, content in row.messages]


def _answer(row: PreferenceRow, text: str) -> Any:
    return text if row.messages is None else [{"role": "assistant", "content": text}]


def preference_records(rows: Sequence[PreferenceRow], *, unpaired: bool = False) -> list[dict[str, Any]]:
    """Rows in TRL's preference format (or, ``unpaired``, its unpaired prompt/completion/label format)."""
    if unpaired:
        return [
            {"prompt": _prompt(row), "completion": _answer(row, text), "label": label}
            for row in rows
            for text, label in ((row.chosen, True), (row.rejected, False))
        ]
    return [{"prompt": _prompt(r), "chosen": _answer(r, r.chosen), "rejected": _answer(r, r.rejected)} for r in rows]


def _config(method: Any, kwargs: dict[str, Any], max_length: int) -> Any:
    """The TRL config of the method, its [method] knobs on top of the shared arguments."""
    knobs = method.model_dump(exclude={"name"})
    if isinstance(method, DpoMethod):
        from trl import DPOConfig

        return DPOConfig(**kwargs, **knobs, max_length=max_length)
    if isinstance(method, KtoMethod):
        from trl import KTOConfig

        return KTOConfig(**kwargs, **knobs, max_length=max_length)
    if isinstance(method, OrpoMethod):
        from trl.experimental.orpo import ORPOConfig

        return ORPOConfig(**kwargs, **knobs, max_length=max_length)
    assert isinstance(method, CpoMethod)
    from trl.experimental.cpo import CPOConfig

    return CPOConfig(**kwargs, **knobs, max_length=max_length)


def _trainer_class(name: str) -> type[Trainer]:
    if name == "dpo":
        from trl import DPOTrainer

        return DPOTrainer
    if name == "kto":
        from trl import KTOTrainer

        return KTOTrainer
    if name == "orpo":
        from trl.experimental.orpo import ORPOTrainer

        return ORPOTrainer
    from trl.experimental.cpo import CPOTrainer

    return CPOTrainer


def preference_trainer(
    prepared: PreparedRun, kwargs: dict[str, Any], model: Any, tokenizer: Any, callbacks: list[TrainerCallback]
) -> Trainer:
    """The TRL trainer of a DPO, ORPO, KTO or CPO run."""
    config = prepared.config
    method = config.method
    unpaired = method.name == "kto"
    train_rows = [r for r in prepared.train_rows if isinstance(r, PreferenceRow)]
    eval_rows = [r for r in prepared.eval_rows if isinstance(r, PreferenceRow)]
    train_rows = replicate(train_rows, config.replicate, config.train.seed)
    train_set = Dataset.from_list(preference_records(train_rows, unpaired=unpaired))
    eval_set = Dataset.from_list(preference_records(eval_rows, unpaired=unpaired)) if eval_rows else None
    trainer_class: Any = _trainer_class(method.name)
    return trainer_class(
        model=model,
        args=_config(method, kwargs, config.train.max_length),
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
