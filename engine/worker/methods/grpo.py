"""GRPO: TRL's GRPOTrainer with the run's reward functions, per-task training rewards and the eval callback.

The dataset holds only ``prompt`` and ``row_index``: reward functions look the row up by index, so
a row's fields (a JSON object of expected fields, tests, a task name) reach them exactly as the
JSONL gave them, never flattened into an Arrow schema shared by every row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from accelerate.utils import gather_object
from datasets import Dataset  # type: ignore[import-untyped]
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from engine.runs.launch import PreparedRun
from engine.store.datasets import PromptRow, replicate
from engine.store.method_config import GrpoMethod
from engine.worker.eval_rewards import EvalRewardCallback
from engine.worker.rewards import RewardSet, task_of

# Per-task training reward: the weighted reward TRL trains on, averaged over that task's completions.
TASK_REWARD_PREFIX = "task_reward/"


def prompt_value(row: PromptRow) -> Any:
    """A row's prompt in TRL's format: a string, or a list of messages for a conversation."""
    if row.messages is None:
        return row.prompt
    return [{"role": role, "content": content} for role, content in row.messages]


class TunedeckGRPOTrainer(GRPOTrainer):
    """GRPOTrainer that also logs ``task_reward/<task>`` (task from the row's ``task_field``)."""

    def __init__(self, *args: Any, rows: Sequence[PromptRow], task_field: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rows = rows
        self._task_field = task_field

    def _calculate_rewards(self, inputs: list[dict[str, Any]], *args: Any) -> torch.Tensor:
        rewards_per_func: torch.Tensor = super()._calculate_rewards(inputs, *args)
        # TRL returns every process's rewards gathered in process order (its rewards/<fn> means are
        # over all of them); the rows' indices are gathered the same way, so each task's mean is
        # over every rank's completions too, not only this one's share. A collective: every rank
        # computes rewards at the same points of the step.
        indices = [example["row_index"] for example in inputs]
        if self.accelerator.num_processes > 1:
            indices = gather_object(indices)
        weights = self.reward_weights.to(rewards_per_func.device).unsqueeze(0)
        totals = (rewards_per_func * weights).nansum(dim=1).tolist()
        by_task: dict[str, list[float]] = defaultdict(list)
        for index, total in zip(indices, totals, strict=True):
            by_task[task_of(self._rows[index], self._task_field)].append(total)
        model: Any = self.model
        mode = "train" if model.training else "eval"
        for task, values in by_task.items():
            self._metrics[mode][TASK_REWARD_PREFIX + task].append(sum(values) / len(values))
        return rewards_per_func


def grpo_config(method: GrpoMethod, kwargs: dict[str, Any], weights: list[float]) -> GRPOConfig:
    """GRPOConfig from the shared arguments and the [method] knobs."""
    knobs = method.model_dump(exclude={"name", "rewards", "task_field", "eval"})
    return GRPOConfig(**kwargs, **knobs, reward_weights=weights)


def grpo_trainer(
    prepared: PreparedRun, kwargs: dict[str, Any], model: Any, tokenizer: Any, callbacks: list[TrainerCallback]
) -> TunedeckGRPOTrainer:
    """The GRPO trainer of a run; with held-out rows, the eval-reward callback is attached to it."""
    config = prepared.config
    method = config.method
    assert isinstance(method, GrpoMethod)
    rows = [r for r in prepared.train_rows if isinstance(r, PromptRow)]
    rows = replicate(rows, config.replicate, config.train.seed)
    rewards = RewardSet(method, prepared.campaign.root)
    tokenizer.padding_side = "left"  # generation continues from each prompt's last token
    dataset = Dataset.from_list([{"prompt": prompt_value(r), "row_index": i} for i, r in enumerate(rows)])
    trainer = TunedeckGRPOTrainer(
        model=model,
        reward_funcs=rewards.trl_functions(rows),
        args=grpo_config(method, kwargs, rewards.weights),
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
        rows=rows,
        task_field=method.task_field,
    )
    eval_rows = [r for r in prepared.eval_rows if isinstance(r, PromptRow)]
    if eval_rows:
        settings = method.eval
        every = (settings and settings.every_steps) or config.train.eval_steps or 50
        eval_callback = EvalRewardCallback(
            eval_rows[: settings.max_rows if settings else None],
            rewards,
            every_steps=every,
            max_new_tokens=(settings and settings.max_new_tokens) or method.max_completion_length,
        )
        eval_callback.bind(trainer)
        trainer.add_callback(eval_callback)
    return trainer
