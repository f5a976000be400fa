"""Watch rules ([[watch]] in campaign.toml): conditions on logged metrics, post hoc or live.

Semantics, shared exactly by ``evaluate`` (a whole run) and ``WatchState`` (line by line):

* **Series.** A rule reads one metric's numeric values from the run's records merged by
  (step, metric), later values winning (``engine.store.metrics.merge_by_step``), ordered by step.
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
from typing import Any

from engine.api import Alert, WatchReport
from engine.errors import TunedeckError
from engine.store.campaign import Campaign
from engine.store.metrics import merge_by_step, read_metrics
from engine.store.numbers import as_number, is_integer
from engine.store.watch_rules import WatchRule


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
        return Alert(
            rule=rule.name, metric=rule.metric, first_step=self.fired, value=value, count=self.count, action=rule.action
        )


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
                track.put(record["step"], as_number(record[track.rule.metric]))
    return _fired(tracks)


def rules_for(campaign: Campaign, run: str) -> list[WatchRule]:
    """The campaign's rules that watch ``run``: all but those whose ``runs`` or ``methods`` leave it out.

    A run whose run.toml cannot be read has no known method: rules limited to methods skip it.
    """
    rules = list(campaign.config.watch)
    if not any(rule.runs or rule.methods for rule in rules):
        return rules
    try:
        method: str | None = campaign.load_run(run).method.name
    except TunedeckError:
        method = None
    return [rule for rule in rules if rule.watches(run, method)]


def watch_report(campaign: Campaign, run: str) -> WatchReport:
    """The alerts the campaign's watch rules raise on a run's recorded metrics (``tunedeck watch``, the service)."""
    campaign.load_run(run)
    rules = rules_for(campaign, run)
    if not rules:
        return WatchReport(alerts=[])  # nothing to judge: a 1M-line metrics file need not be read
    return WatchReport(alerts=evaluate(rules, read_metrics(campaign.run(run).metrics)))


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
        if not is_integer(step):
            return []
        touched: list[_Track] = []
        for metric, value in record.items():
            for track in self._by_metric.get(metric, ()):
                track.put(step, as_number(value))
                touched.append(track)
        fresh = [t for t in touched if t.fired is not None and t.order not in self._announced]
        self._announced.update(t.order for t in fresh)
        return _fired(fresh)

    @property
    def alerts(self) -> list[Alert]:
        """Every rule that has fired on the series as it now stands, with counts so far."""
        return _fired(self._tracks)
