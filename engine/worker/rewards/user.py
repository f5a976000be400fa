"""A user's own reward function, ``"module:function"``, loaded from a file inside the campaign folder.

The file is found (and refused when outside the campaign, or a symlink out of it) by
engine.store.method_config.user_reward_file, the check prepare_run ran before the worker started.
It is loaded by its path under a private module name: nothing is added to sys.path, so it can
neither shadow a library nor be shadowed by one. The function is called TRL's way:
``function(completions=[str, ...], prompts=[...], **{column: [value, ...]})`` for every row field
(a row field named ``completions`` or ``prompts`` is not passed), and returns one float (or None)
per completion. What the user's code raises, and rewards that are not finite numbers, become one
``ConfigError`` naming the file (and line): the run fails with that line, never a traceback.
"""

from __future__ import annotations

import importlib.util
import math
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.store.datasets import PromptRow
from engine.store.method_config import RESERVED_COLUMNS, user_reward_file


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
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # the user's code: one line naming it, never the worker's exit
        raise _user_error(f"loading {path.name} failed", exc, path) from None
    function = getattr(module, name)

    def score(completions: Sequence[str], rows: Sequence[PromptRow]) -> list[float]:
        columns: dict[str, list[Any]] = {}
        for key in sorted({key for row in rows for key in row.fields} - RESERVED_COLUMNS):
            columns[key] = [row.fields.get(key) for row in rows]
        prompts = [row.prompt if row.prompt is not None else [list(m) for m in row.messages or ()] for row in rows]
        try:
            values = function(completions=list(completions), prompts=prompts, **columns)
        except (Exception, SystemExit) as exc:
            raise _user_error(f"reward {fn} raised", exc, path) from None
        return _checked(fn, values, len(completions), path)

    return score


def _user_error(what: str, exc: BaseException, path: Path) -> ConfigError:
    """``what`` with the exception, at the line of the user's file it came from (the deepest frame there)."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == str(path)]
    line = frames[-1].lineno if frames else getattr(exc, "lineno", None)
    return ConfigError(f"{what}: {type(exc).__name__}: {exc}"[:500], path=path, line=line)


def _checked(fn: str, values: Any, expected: int, path: Path) -> list[float]:
    """The rewards as floats, or one line saying what is wrong with them (TRL would fail far from the cause)."""
    if isinstance(values, str | bytes | dict) or not hasattr(values, "__len__"):
        raise ConfigError(f"reward {fn} returned {type(values).__name__}, not a list of numbers", path=path)
    if len(values) != expected:
        raise ConfigError(f"reward {fn} returned {len(values)} values for {expected} completions", path=path)
    out = []
    for index, value in enumerate(values):
        number = _as_reward(value)
        if number is None or math.isinf(number):
            raise ConfigError(
                f"reward {fn} returned {str(value)[:80]!r} for completion {index}: a finite number or None", path=path
            )
        out.append(number)
    return out


def _as_reward(value: Any) -> float | None:
    """A reward as a float: None is NaN ("no reward for this one", as TRL has it); None for text or a non-number.

    Numbers of any kind pass (numpy's, a tensor's items, bools as 0 and 1); text never does.
    """
    if value is None:
        return math.nan
    if isinstance(value, str | bytes):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
