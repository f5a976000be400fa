"""Watch rules ([[watch]] in campaign.toml): conditions on logged metrics, post hoc or live.

Semantics, shared exactly by ``evaluate`` (a whole run) and ``WatchState`` (line by line):

* **Series.** A rule reads one metric's numeric values from the run's records merged by
  (step, metric), later values winning (``engine.metrics.merge_by_step``), ordered by step.
  Null, strings and booleans are not values; NaN and ±inf are.
* **Step window**, inclusive at both ends: only values with ``after_step <= step <= before_step``
  are considered at all. Values outside it neither meet the condition nor break a streak, and a
  plateau's look-back never reaches before ``after_step``.
* **Conditions** on one value v: ``above`` v > x, ``below`` v < x, ``at_least`` v >= x,
  ``at_most`` v <= x (NaN meets none of these, so it breaks a streak); ``nonfinite`` v is NaN or ±inf.
* **plateau** = {window = w, min_delta = d} holds at the value at step s when the series has a value
  at some step <= s - w (the look-back is covered) and, from the last such value (the *anchor*, the
  value in force at step s - w) through the value at s, every value is finite and max - min < d.
  Using the anchor means w need not be a multiple of the logging interval; d must be > 0.
* **sustain** = n: the rule fires at the n-th consecutive value of its (windowed) series meeting the
  condition; ``first_step`` and ``value`` are that value's. ``count`` is how many values of the
  series meet the condition, regardless of sustain. Alerts are ordered by first_step, then rule order.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from engine.metrics import NON_METRIC_KEYS, merge_by_step

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


def _json_float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


@dataclass(frozen=True)
class Alert:
    """A rule that fired: where it first fired, the value there, and how often its condition held."""

    rule: str
    metric: str
    first_step: int
    value: float
    count: int
    action: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict: a non-finite value is given as the string "NaN", "Infinity" or "-Infinity"."""
        return {
            "rule": self.rule,
            "metric": self.metric,
            "first_step": self.first_step,
            "value": _json_float(self.value),
            "count": self.count,
            "action": self.action,
        }


def _number(value: Any) -> float | None:
    """A metric value as a float, or None when it is not a number (null, text, a boolean)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


class _Track:
    """One rule's windowed series with, per value, whether the condition holds and the streak ending there."""

    def __init__(self, rule: WatchRule, order: int) -> None:
        self.rule = rule
        self.order = order
        self.steps: list[int] = []
        self.values: list[float] = []
        self.holds: list[bool] = []
        # Consecutive holds ending at each value, capped at sustain so that a change stops
        # propagating after at most sustain values.
        self.streaks: list[int] = []
        self.count = 0
        self.fired: int | None = None  # the step of the value that completed the condition

    def put(self, step: int, value: float | None) -> None:
        """Set the value at ``step`` (None removes it, as a later null does in a merge) and update."""
        if not self.rule.in_window(step):
            return
        k = bisect_left(self.steps, step)
        present = k < len(self.steps) and self.steps[k] == step
        if value is None and not present:
            return
        if value is None:
            self.count -= self.holds[k]
            del self.steps[k], self.values[k], self.holds[k], self.streaks[k]
        elif present:
            self.values[k] = value
        else:
            self.steps.insert(k, step)
            self.values.insert(k, value)
            self.holds.insert(k, False)
            self.streaks.insert(k, 0)
        self._refire(k, step, self._update(k, step))

    def _update(self, k: int, changed: int) -> int:
        """Recompute from index k after a change at step ``changed``; the index where nothing more changes."""
        after = bisect_right(self.steps, changed)
        bound = self.steps[after] if after < len(self.steps) else None  # the first value after the change
        window = self.rule.plateau.window if self.rule.plateau is not None else None
        for i in range(k, len(self.steps)):
            step = self.steps[i]
            # Only a plateau whose look-back reaches over the change can read it; an in-order
            # append therefore costs O(1), or O(values in the window) for a plateau.
            affected = step == changed or (window is not None and bound is not None and step - window < bound)
            holds = self._holds(i) if affected else self.holds[i]
            streak = min((self.streaks[i - 1] if i else 0) + 1, self.rule.sustain) if holds else 0
            if not affected and streak == self.streaks[i]:
                return i
            self.count += holds - self.holds[i]
            self.holds[i], self.streaks[i] = holds, streak
        return len(self.steps)

    def _refire(self, k: int, changed: int, end: int) -> None:
        """Keep ``fired`` the first step whose streak reaches sustain; streaks changed only in [k, end)."""
        old = self.fired
        if old is not None and old < changed:
            return
        full = self.rule.sustain
        hit = next((i for i in range(k, end) if self.streaks[i] == full), None)
        if hit is not None:
            self.fired = self.steps[hit]
        elif old is not None and not (end < len(self.steps) and old >= self.steps[end]):
            # The old firing was inside the changed span and is gone: the next one is in the tail.
            self.fired = next((self.steps[i] for i in range(end, len(self.steps)) if self.streaks[i] == full), None)

    def _holds(self, i: int) -> bool:
        plateau = self.rule.plateau
        if plateau is None:
            return self.rule.meets(self.values[i])
        anchor = bisect_right(self.steps, self.steps[i] - plateau.window, 0, i + 1) - 1
        if anchor < 0:
            return False
        span = self.values[anchor : i + 1]
        return all(math.isfinite(v) for v in span) and max(span) - min(span) < plateau.min_delta

    def alert(self) -> Alert | None:
        """The rule's alert as the series stands, or None when it has not fired."""
        if self.fired is None:
            return None
        rule = self.rule
        value = self.values[bisect_left(self.steps, self.fired)]
        return Alert(rule.name, rule.metric, self.fired, value, self.count, rule.action)


def _fired(tracks: list[_Track]) -> list[Alert]:
    """Alerts of the tracks that fired, by first step and then rule order."""
    fired = [(t.order, a) for t in tracks if (a := t.alert()) is not None]
    return [a for _, a in sorted(fired, key=lambda pair: (pair[1].first_step, pair[0]))]


def evaluate(rules: list[WatchRule], records: list[dict[str, Any]]) -> list[Alert]:
    """Evaluate rules over a whole run's metric records (raw or merged); one Alert per rule that fired."""
    tracks = [_Track(rule, order) for order, rule in enumerate(rules)]
    for record in merge_by_step(records):
        for track in tracks:
            if track.rule.metric in record:
                track.put(record["step"], _number(record[track.rule.metric]))
    return _fired(tracks)


class WatchState:
    """Incremental evaluation for a live run: feed each metrics line as it is appended.

    After any sequence of lines, ``alerts`` equals ``evaluate`` over the same lines. A line that
    re-logs a step (after a resume) replaces that step's value, and the values from that step on
    are re-evaluated as far as the change reaches (a plateau's window, then ``sustain`` values),
    so an earlier firing may move or vanish; ``feed`` still announces each rule at most once
    per run, the first time it fires.
    """

    def __init__(self, rules: list[WatchRule]) -> None:
        self._tracks = [_Track(rule, order) for order, rule in enumerate(rules)]
        self._by_metric: dict[str, list[_Track]] = {}
        for track in self._tracks:
            self._by_metric.setdefault(track.rule.metric, []).append(track)
        self._announced: set[int] = set()

    def feed(self, record: dict[str, Any]) -> list[Alert]:
        """Take one metrics line; return alerts of rules that fire for the first time on it."""
        step = record.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            return []
        touched: list[_Track] = []
        for metric, value in record.items():
            for track in self._by_metric.get(metric, ()):
                track.put(step, _number(value))
                touched.append(track)
        fresh = [t for t in touched if t.fired is not None and t.order not in self._announced]
        self._announced.update(t.order for t in fresh)
        return _fired(fresh)

    @property
    def alerts(self) -> list[Alert]:
        """Every rule that has fired on the series as it now stands, with counts so far."""
        return _fired(self._tracks)
