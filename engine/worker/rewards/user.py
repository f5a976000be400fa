"""A user's own reward function, ``"module:function"``, loaded from a file inside the campaign folder.

The file is found (and refused when outside the campaign, or a symlink out of it) by
engine.store.method_config.user_reward_file, the check prepare_run ran before the worker started.
It is loaded by its path under a private module name: nothing is added to sys.path, so it can
neither shadow a library nor be shadowed by one. The function is called TRL's way:
``function(completions=[str, ...], prompts=[...], **{column: [value, ...]})`` for every row field,
and returns one float (or None) per completion.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.store.datasets import PromptRow
from engine.store.method_config import user_reward_file


def load_user_reward(campaign_root: Path, fn: str) -> Callable[[Sequence[str], Sequence[PromptRow]], list[float]]:
    """The user's function wrapped to take completions and rows and return one float per completion."""
    try:
        path, name = user_reward_file(campaign_root, fn)
    except ValueError as exc:
        raise ConfigError(str(exc), field="method.rewards.fn") from None
    module_name = "tunedeck_user_rewards_" + fn.split(":")[0].replace(".", "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function = getattr(module, name)

    def score(completions: Sequence[str], rows: Sequence[PromptRow]) -> list[float]:
        columns: dict[str, list[Any]] = {}
        for key in sorted({key for row in rows for key in row.fields}):
            columns[key] = [row.fields.get(key) for row in rows]
        prompts = [row.prompt if row.prompt is not None else [list(m) for m in row.messages or ()] for row in rows]
        values = function(completions=list(completions), prompts=prompts, **columns)
        if len(values) != len(completions):
            raise ValueError(f"reward {fn} returned {len(values)} values for {len(completions)} completions")
        return [math.nan if v is None else float(v) for v in values]

    return score
