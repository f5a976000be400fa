"""GRPO's rewards: the registry's functions (rewards.builtin) and a user's own (rewards.user), combined.

A ``RewardSet`` holds a run's ``[[method.rewards]]``; ``trl_functions`` gives TRL one callable per
entry, named as it is logged (``rewards/<name>/mean``), and ``weights`` their weights in the
combined reward. The eval callback scores with ``total``, the same weighted sum TRL trains on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.store.datasets import PromptRow
from engine.store.method_config import GrpoMethod, RewardSpec
from engine.worker.rewards.builtin import BUILTIN, RewardScore
from engine.worker.rewards.user import load_user_reward

__all__ = ["RewardScore", "RewardSet", "completion_text", "task_of"]


def completion_text(completion: Any) -> str:
    """A completion as text: TRL passes a string, or for chat prompts a list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return str(completion)


def task_of(row: PromptRow, task_field: str) -> str:
    """The task a row belongs to, from its ``task_field`` ("all" when the row has none)."""
    value = row.fields.get(task_field)
    return "all" if value is None else str(value)


class RewardSet:
    """A run's reward functions, their log names and weights."""

    def __init__(self, method: GrpoMethod, campaign_root: Path) -> None:
        self.specs = list(method.rewards)
        self.task_field = method.task_field
        self.weights = [spec.weight for spec in self.specs]
        self._scorers = [self._scorer(spec, campaign_root) for spec in self.specs]

    @staticmethod
    def _scorer(spec: RewardSpec, campaign_root: Path) -> Callable[[Sequence[str], Sequence[PromptRow]], list[float]]:
        if ":" in spec.fn:
            user = load_user_reward(campaign_root, spec.fn)
            return lambda completions, rows: user(completions, rows)
        builtin = BUILTIN[spec.fn]
        return lambda completions, rows: [score.value for score in builtin(spec, completions, rows)]

    @property
    def names(self) -> list[str]:
        """The log name of each function, in order."""
        return [spec.log_name for spec in self.specs]

    def score(self, completions: Sequence[str], rows: Sequence[PromptRow]) -> list[list[float]]:
        """Each function's rewards for each (completion, row): shape (functions, completions)."""
        return [scorer(completions, rows) for scorer in self._scorers]

    def total(self, completions: Sequence[str], rows: Sequence[PromptRow]) -> list[float]:
        """The weighted sum of every function's reward per completion (NaN rewards count as 0, as in TRL)."""
        per_function = self.score(completions, rows)
        return [
            sum(w * (0.0 if math.isnan(r) else r) for w, r in zip(self.weights, column, strict=True))
            for column in zip(*per_function, strict=True)
        ]

    def trl_functions(self, rows: Sequence[PromptRow]) -> list[Callable[..., list[float]]]:
        """One TRL reward function per entry; TRL passes each dataset row's ``row_index`` column back."""
        functions = []
        for name, scorer in zip(self.names, self._scorers, strict=True):
            functions.append(_trl_function(name, scorer, rows))
        return functions


def _trl_function(
    name: str, scorer: Callable[[Sequence[str], Sequence[PromptRow]], list[float]], rows: Sequence[PromptRow]
) -> Callable[..., list[float]]:
    def reward(completions: list[Any], row_index: list[int], **_: Any) -> list[float]:
        return scorer([completion_text(c) for c in completions], [rows[i] for i in row_index])

    reward.__name__ = name  # TRL logs rewards/<__name__>/mean
    return reward
