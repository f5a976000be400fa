"""The [[watch]] rules of campaign.toml: their schema and validation (the evaluator is engine.runs.watch).

Kept with the config so the store never imports run control; the rules' exact semantics are
documented where they are evaluated, in engine/runs/watch.py.
"""

from __future__ import annotations

import math
from fnmatch import fnmatchcase
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from engine.store.method_config import METHODS
from engine.store.metrics import NON_METRIC_KEYS

CONDITIONS = ("above", "below", "at_least", "at_most", "nonfinite", "plateau")


class _Strict(BaseModel):
    # Strict: a quoted "0.5" or a boolean threshold in campaign.toml is a mistake, not a number.
    model_config = ConfigDict(extra="forbid", strict=True)


class Plateau(_Strict):
    """The metric moved less than ``min_delta`` over the last ``window`` steps."""

    window: int = Field(gt=0, description="Look-back in steps.")
    # > 0 because the test is max - min < min_delta: with 0 the rule could never fire.
    min_delta: float = Field(gt=0, allow_inf_nan=False)


class WatchRule(_Strict):
    """One [[watch]] rule: a metric, exactly one condition, a sustain count, a step window, an action."""

    name: str = Field(min_length=1)
    metric: str = Field(min_length=1, description="The metric's name exactly as logged, e.g. 'eval/mean_reward'.")
    above: float | None = Field(None, allow_inf_nan=False)
    below: float | None = Field(None, allow_inf_nan=False)
    at_least: float | None = Field(None, allow_inf_nan=False)
    at_most: float | None = Field(None, allow_inf_nan=False)
    nonfinite: bool | None = None
    plateau: Plateau | None = None
    sustain: int = Field(1, ge=1, description="Consecutive logged values that must meet the condition.")
    after_step: int | None = Field(None, ge=0, description="Only values with step >= this count.")
    before_step: int | None = Field(None, ge=0, description="Only values with step <= this count.")
    action: Literal["stop", "warn"] = "warn"
    # Which runs it watches (all when absent): a DPO loss of 0.7 and an SFT loss of 0.7 are not
    # the same alarm, and a GRPO-only signal need not be read on every run.
    runs: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, min_length=1, description="Glob patterns of run names (fnmatch, e.g. 'v4.*'); all runs when absent."
    )
    methods: list[Literal[METHODS]] | None = Field(  # type: ignore[valid-type]
        None, min_length=1, description="Training methods (sft, dpo, orpo, grpo, kto, cpo); all when absent."
    )

    @field_validator("metric")
    @classmethod
    def _a_metric(cls, value: str) -> str:
        if value in NON_METRIC_KEYS:
            raise ValueError(f"{value!r} describes a metrics line; name a metric")
        return value

    @field_validator("nonfinite")
    @classmethod
    def _only_true(cls, value: bool | None) -> bool | None:
        if value is False:
            raise ValueError("nonfinite can only be true; leave it out otherwise")
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> WatchRule:
        given = [name for name in CONDITIONS if getattr(self, name) is not None]
        if len(given) != 1:
            got = f"got {' and '.join(given)}" if given else "got none"
            raise ValueError(f"give exactly one of {', '.join(CONDITIONS)} ({got})")
        if self.after_step is not None and self.before_step is not None and self.after_step > self.before_step:
            raise ValueError(f"after_step ({self.after_step}) is past before_step ({self.before_step})")
        return self

    def watches(self, run: str, method: str | None) -> bool:
        """Whether this rule applies to run ``run`` trained with ``method`` (None: not known)."""
        return (self.runs is None or any(fnmatchcase(run, pattern) for pattern in self.runs)) and (
            self.methods is None or method in self.methods
        )

    def in_window(self, step: int) -> bool:
        """Whether a value logged at ``step`` is considered (both bounds inclusive)."""
        return (self.after_step is None or step >= self.after_step) and (
            self.before_step is None or step <= self.before_step
        )

    def meets(self, value: float) -> bool:
        """The condition on one value (plateau needs the series: see ``_Track``)."""
        if self.nonfinite:
            return not math.isfinite(value)
        if self.above is not None:
            return value > self.above
        if self.below is not None:
            return value < self.below
        if self.at_least is not None:
            return value >= self.at_least
        if self.at_most is not None:
            return value <= self.at_most
        return False

    def describe(self) -> str:
        """The condition in words, e.g. ``grad_norm > 2.0 for 3 values``."""
        ops = {"above": ">", "below": "<", "at_least": ">=", "at_most": "<="}
        cond = next(
            (f"{self.metric} {op} {getattr(self, k)}" for k, op in ops.items() if getattr(self, k) is not None), ""
        )
        if self.nonfinite:
            cond = f"{self.metric} is NaN or infinite"
        if self.plateau is not None:
            cond = f"{self.metric} moves less than {self.plateau.min_delta} over {self.plateau.window} steps"
        return cond + (f" for {self.sustain} values" if self.sustain > 1 else "")


def validate_rules(rules: list[WatchRule]) -> list[WatchRule]:
    """Rule names must be unique; a repeat is reported at its own ``name`` key."""
    first: dict[str, int] = {}
    for index, rule in enumerate(rules):
        if rule.name in first:
            error = PydanticCustomError(
                "duplicate_name", "name already used by watch.{other}", {"other": first[rule.name]}
            )
            # A ValidationError raised inside a validator keeps its location, so the
            # ConfigError names the line of the repeated name rather than the whole list.
            details = InitErrorDetails(type=error, loc=(index, "name"), input=rule.name)
            raise ValidationError.from_exception_data("watch", [details])
        first[rule.name] = index
    return rules


# The type of CampaignConfig.watch.
WatchRules = Annotated[list[WatchRule], AfterValidator(validate_rules)]
