"""Per-task eval rewards: every N steps, greedy completions of held-out rows scored with the run's rewards.

Logs ``eval/<task>`` (the mean weighted reward of that task's rows, the task taken from the row's
``task_field``) and ``eval/mean_reward`` (over every row), as a metrics line of its own at the
step. Two traps would silently corrupt the trainer's own records, and are avoided here:

- logging from ``on_step_end`` goes through ``on_log``, which clears ``control.should_log``; the
  trainer would then skip its own log of that step. The flag is restored after logging.
- the trainer's ``log()`` (GRPOTrainer's, TunedeckTrainer's) adds and clears its pending metrics;
  calling it would steal them into the eval record. The base ``transformers.Trainer.log`` is used.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from engine.store.datasets import PromptRow
from engine.worker.rewards import RewardSet, task_of

EVAL_PREFIX = "eval/"
MEAN_KEY = "eval/mean_reward"


def eval_prompt_text(tokenizer: Any, row: PromptRow) -> str:
    """The text generation continues from (a conversation rendered with the model's chat template)."""
    if row.messages is None:
        return str(row.prompt)
    messages = [{"role": role, "content": content} for role, content in row.messages]
    return str(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))


class EvalRewardCallback(TrainerCallback):
    """Scores held-out rows every ``every_steps`` steps (and once before the first step)."""

    def __init__(self, rows: Sequence[PromptRow], rewards: RewardSet, *, every_steps: int, max_new_tokens: int):
        self.rows = list(rows)
        self.rewards = rewards
        self.every_steps = every_steps
        self.max_new_tokens = max_new_tokens
        self.trainer: Trainer | None = None
        self.seconds = 0.0  # time spent generating and scoring, for the overhead benchmark

    def bind(self, trainer: Trainer) -> None:
        """The trainer whose model is evaluated and whose log the records join."""
        self.trainer = trainer

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.global_step == 0:  # a baseline before training; a resumed run has one already
            self._evaluate_and_log(control)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if state.global_step % self.every_steps == 0:
            self._evaluate_and_log(control)

    def _evaluate_and_log(self, control: TrainerControl) -> None:
        assert self.trainer is not None, "EvalRewardCallback.bind(trainer) first"
        import time

        started = time.perf_counter()
        logs = self.evaluate()
        self.seconds += time.perf_counter() - started
        should_log = control.should_log  # on_log clears it: the trainer's own record of this step needs it
        Trainer.log(self.trainer, logs)  # the base log: the trainer's own log() would take its pending metrics
        control.should_log = should_log

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """``eval/<task>`` and ``eval/mean_reward`` of greedy completions of the held-out rows."""
        assert self.trainer is not None
        model: Any = self.trainer.model
        tokenizer: Any = self.trainer.processing_class
        was_training = model.training
        model.eval()
        try:
            completions = self._generate(model, tokenizer)
        finally:
            model.train(was_training)
        totals = self.rewards.total(completions, self.rows)
        by_task: dict[str, list[float]] = defaultdict(list)
        for row, total in zip(self.rows, totals, strict=True):
            by_task[task_of(row, self.rewards.task_field)].append(total)
        logs = {EVAL_PREFIX + task: sum(v) / len(v) for task, v in sorted(by_task.items())}
        logs[MEAN_KEY] = sum(totals) / len(totals)
        return logs

    def _generate(self, model: Any, tokenizer: Any, batch_size: int = 32) -> list[str]:
        device = next(model.parameters()).device
        side, tokenizer.padding_side = tokenizer.padding_side, "left"
        out: list[str] = []
        try:
            for start in range(0, len(self.rows), batch_size):
                prompts = [eval_prompt_text(tokenizer, r) for r in self.rows[start : start + batch_size]]
                batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                generated = model.generate(
                    **batch,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
                out.extend(
                    tokenizer.batch_decode(generated[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
                )
        finally:
            tokenizer.padding_side = side
        return out
