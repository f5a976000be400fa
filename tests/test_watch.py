"""Watch rules: each condition, sustain, step windows, plateaus, live vs post hoc, validation."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ConfigError
from engine.runs.watch import Alert, WatchState, evaluate
from engine.store.campaign import Campaign
from engine.store.jsonl import JsonlWriter, read_jsonl
from engine.store.metrics import merge_by_step, read_metrics
from engine.store.watch_rules import Plateau, WatchRule

DATA = Path(__file__).parent / "data" / "watch"
NAN, INF = float("nan"), float("inf")


def rule(**fields: Any) -> WatchRule:
    """A rule on metric ``m`` named ``r`` unless told otherwise."""
    return WatchRule.model_validate({"name": "r", "metric": "m"} | fields)


def run(*values: float | None, start: int = 10, every: int = 10, metric: str = "m") -> list[dict[str, Any]]:
    """Metric records with ``values`` at steps start, start+every, ... (None: the metric is absent)."""
    return [{"step": start + i * every} | ({} if v is None else {metric: v}) for i, v in enumerate(values)]


def _json(alerts: list[Alert]) -> list[dict[str, Any]]:
    """Alerts as JSON dicts, so NaN values compare equal."""
    return [a.model_dump(mode="json") for a in alerts]


def fired(rules: list[WatchRule], records: list[dict[str, Any]]) -> dict[str, tuple[int, float, int]]:
    """{rule name: (first_step, value, count)} for each rule that fired."""
    return {a.rule: (a.first_step, a.value, a.count) for a in evaluate(rules, records)}


# --- conditions on one value ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "first_step", "count"),
    [
        ({"above": 2.0}, 30, 2),  # 2.0 is not above 2.0; NaN meets no comparison
        ({"below": 2.0}, 10, 1),
        ({"at_least": 2.0}, 20, 3),
        ({"at_most": 2.0}, 10, 2),
    ],
)
def test_threshold_conditions(condition: dict[str, float], first_step: int, count: int) -> None:
    records = run(1.0, 2.0, 3.0, NAN, 5.0)
    assert fired([rule(**condition)], records) == {"r": (first_step, records[first_step // 10 - 1]["m"], count)}


def test_no_value_meets_the_condition_no_alert() -> None:
    assert evaluate([rule(above=10.0)], run(1.0, 2.0, NAN, INF * -1)) == []
    assert evaluate([rule(above=10.0)], []) == []


def test_nonfinite_with_bare_nan_from_a_real_metrics_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    with JsonlWriter(path) as writer:
        for step, loss in [(1, 0.9), (2, 0.8), (3, NAN), (4, 0.7), (5, INF), (6, -INF)]:
            writer.write({"step": step, "ts": 1.0 + step, "loss": loss, "grad_norm": 0.1})
    text = path.read_text(encoding="utf-8")
    # Bare, as HF logs them.
    assert '"loss":NaN' in text
    assert '"loss":Infinity' in text

    rules = [
        rule(name="nan", metric="loss", nonfinite=True, action="stop"),
        rule(name="low", metric="loss", at_most=0.85, sustain=2),  # the NaN at 3 breaks 2 -> 4
        rule(name="grad", metric="grad_norm", nonfinite=True),
    ]
    alerts = evaluate(rules, read_metrics(path))
    assert [a.rule for a in alerts] == ["nan"]
    nan = alerts[0]
    assert (nan.first_step, nan.count, nan.action) == (3, 3, "stop")
    assert math.isnan(nan.value)
    assert json.loads(json.dumps(nan.model_dump(mode="json"))) == {
        "rule": "nan",
        "metric": "loss",
        "first_step": 3,
        "value": "NaN",
        "count": 3,
        "action": "stop",
    }


def test_to_json_is_json_safe_for_infinities() -> None:
    def value(x: float) -> Any:
        alert = Alert(rule="r", metric="m", first_step=1, value=x, count=1, action="warn")
        return alert.model_dump(mode="json")["value"]

    assert (value(INF), value(-INF), value(0.25)) == ("Infinity", "-Infinity", 0.25)


def test_action_is_carried_and_defaults_to_warn() -> None:
    rules = [rule(name="w", above=0.0), rule(name="s", above=0.0, action="stop")]
    assert {a.rule: a.action for a in evaluate(rules, run(1.0))} == {"w": "warn", "s": "stop"}


def test_non_numeric_values_are_not_values() -> None:
    records: list[dict[str, Any]] = [
        {"step": 1, "m": None},
        {"step": 2, "m": "3.0"},
        {"step": 3, "m": True},
        {"step": 4, "m": 3},
    ]
    assert fired([rule(above=2.0)], records) == {"r": (4, 3.0, 1)}


# --- sustain and the step window ------------------------------------------------------------


def test_sustain_streak_broken_and_restarted() -> None:
    # above 0.5 at 10, 20 (streak 2), broken at 30, then 40, 50, 60 completes a streak of 3 at 60.
    records = run(0.6, 0.7, 0.4, 0.8, 0.9, 0.6, 0.95)
    assert fired([rule(above=0.5, sustain=3)], records) == {"r": (60, 0.6, 6)}
    assert fired([rule(above=0.5, sustain=5)], records) == {}


def test_steps_without_the_metric_do_not_break_a_streak() -> None:
    records = run(0.6, None, 0.7, None, 0.8)
    assert fired([rule(above=0.5, sustain=3)], records) == {"r": (50, 0.8, 3)}


def test_step_window_is_inclusive_and_values_outside_are_not_considered() -> None:
    records = run(0.9, 0.9, 0.1, 0.9, 0.9, 0.9)  # steps 10..60
    # Window [30, 50]: 10 and 20 are ignored (no streak carries in), 60 is ignored (not counted).
    windowed = rule(above=0.5, sustain=2, after_step=30, before_step=50)
    assert fired([windowed], records) == {"r": (50, 0.9, 2)}
    # Both bounds inclusive: a one-step window at 40 sees exactly one value.
    assert fired([rule(above=0.5, after_step=40, before_step=40)], records) == {"r": (40, 0.9, 1)}
    assert fired([rule(below=0.5, after_step=31)], records) == {}


def test_rules_on_slashed_metrics_and_merged_lines() -> None:
    # train and eval logs share a step; a later value of the same metric at a step wins.
    records = [
        {"step": 10, "loss": 1.0},
        {"step": 10, "eval/mean_reward": 0.1},
        {"step": 20, "eval/mean_reward": 0.9},
        {"step": 20, "eval/mean_reward": 0.2},
    ]
    assert evaluate([rule(metric="eval/mean_reward", above=0.5)], records) == []
    assert fired([rule(metric="eval/mean_reward", at_least=0.2)], records) == {"r": (20, 0.2, 1)}


# --- plateau --------------------------------------------------------------------------------


PLATEAU = {"window": 30, "min_delta": 0.01}


def test_plateau_fires_when_the_window_is_covered_and_flat() -> None:
    # Rising to 0.47 at step 30, then flat within 0.004: at 60 the look-back [30, 60] is flat.
    records = run(0.30, 0.40, 0.470, 0.472, 0.468, 0.471, 0.469)
    assert fired([rule(plateau=PLATEAU)], records) == {"r": (60, 0.471, 2)}


def test_plateau_needs_history_covering_the_window() -> None:
    flat = run(0.5, 0.5, 0.5)  # steps 10..30: at 30 the earliest value (10) is not <= 30 - 30
    assert fired([rule(plateau=PLATEAU)], flat) == {}
    assert fired([rule(plateau=PLATEAU)], run(0.5, 0.5, 0.5, 0.5)) == {"r": (40, 0.5, 1)}


def test_plateau_does_not_fire_while_the_metric_keeps_moving() -> None:
    climbing = run(*[0.3 + 0.006 * i for i in range(30)])  # 0.018 per 30 steps
    assert fired([rule(plateau=PLATEAU)], climbing) == {}
    # Oscillating: the span within any 30 steps is 0.02 even though the trend is flat.
    assert fired([rule(plateau=PLATEAU)], run(*[0.5, 0.52] * 10)) == {}


def test_plateau_anchor_when_window_is_not_a_multiple_of_the_logging_interval() -> None:
    # Window 25 with logs every 10: at step 50 the value in force at step 25 is the one at 20.
    records = run(0.1, 0.5, 0.5, 0.5, 0.5)
    assert fired([rule(plateau={"window": 25, "min_delta": 0.01})], records) == {"r": (50, 0.5, 1)}


def test_plateau_with_a_nonfinite_value_in_the_window_does_not_hold() -> None:
    records = run(0.5, 0.5, NAN, 0.5, 0.5, 0.5, 0.5, 0.5)
    # The NaN at 30 is in every look-back up to step 60 (whose anchor it is).
    assert fired([rule(plateau=PLATEAU)], records) == {"r": (70, 0.5, 2)}


def test_plateau_look_back_stays_inside_the_step_window() -> None:
    records = run(*[0.5] * 10)  # flat from step 10
    assert fired([rule(plateau=PLATEAU)], records)["r"][0] == 40
    assert fired([rule(plateau=PLATEAU, after_step=50)], records)["r"][0] == 80
    assert fired([rule(plateau=PLATEAU, before_step=39)], records) == {}
    assert fired([rule(plateau=PLATEAU, sustain=3)], records)["r"] == (60, 0.5, 7)


# --- live evaluation ------------------------------------------------------------------------


def test_watch_state_announces_each_rule_once_at_its_first_step() -> None:
    rules = [rule(name="hi", above=0.5, sustain=2, action="stop"), rule(name="nan", nonfinite=True)]
    state = WatchState(rules)
    announced = {}
    for record in run(0.6, 0.4, 0.7, 0.8, NAN, 0.9, 0.9):
        for alert in state.feed(record):
            assert alert.rule not in announced
            announced[alert.rule] = (alert.first_step, alert.count)
    assert announced == {"hi": (40, 3), "nan": (50, 1)}  # counts as they stood when announced
    assert [(a.rule, a.first_step, a.count) for a in state.alerts] == [("hi", 40, 5), ("nan", 50, 1)]
    assert _json(state.alerts) == _json(evaluate(rules, run(0.6, 0.4, 0.7, 0.8, NAN, 0.9, 0.9)))


def test_watch_state_ignores_lines_without_a_usable_step() -> None:
    state = WatchState([rule(above=0.0)])
    assert state.feed({"m": 1.0}) == []
    assert state.feed({"step": True, "m": 1.0}) == []
    assert state.feed({"step": "3", "m": 1.0}) == []
    assert state.alerts == []


def test_relogged_steps_after_a_resume_replace_earlier_values() -> None:
    rules = [rule(name="spike", metric="grad_norm", above=2.0, action="stop")]
    lines = [{"step": s, "grad_norm": 0.3} for s in range(5, 30, 5)]
    lines.append({"step": 30, "grad_norm": 3.1})  # a spike, then a crash after step 30
    # Resume from the checkpoint at step 20: steps 25 and 30 are logged again, calmly; 45 spikes.
    lines += [{"step": s, "grad_norm": 0.3} for s in (25, 30, 35, 40)] + [{"step": 45, "grad_norm": 2.5}]

    state = WatchState(rules)
    announced = [(i, a.first_step) for i, line in enumerate(lines) for a in state.feed(line)]
    assert announced == [(5, 30)]  # live, the spike at 30 was announced once, when it happened
    assert state.alerts == evaluate(rules, lines)  # the run as it now stands: 30 was replaced
    assert [(a.first_step, a.value, a.count) for a in state.alerts] == [(45, 2.5, 1)]
    assert merge_by_step(lines)[5] == {"step": 30, "grad_norm": 0.3}


def test_a_relogged_null_removes_a_value_as_a_merge_does() -> None:
    lines: list[dict[str, Any]] = [{"step": 1, "m": 5.0}, {"step": 2, "m": 5.0}, {"step": 1, "m": None}]
    rules = [rule(above=1.0, sustain=2)]
    state = WatchState(rules)
    for line in lines:
        state.feed(line)
    assert state.alerts == evaluate(rules, lines) == []


def _oracle(r: WatchRule, records: list[dict[str, Any]]) -> tuple[int, float, int] | None:
    """first_step, value and count straight from the definitions in engine.runs.watch's docstring."""
    series = [
        (rec["step"], float(rec[r.metric]))
        for rec in merge_by_step(records)
        if isinstance(rec.get(r.metric), int | float) and not isinstance(rec[r.metric], bool)
        if (r.after_step is None or rec["step"] >= r.after_step)
        and (r.before_step is None or rec["step"] <= r.before_step)
    ]
    compare: dict[str, Callable[[float, float], bool]] = {
        "above": lambda v, x: v > x,
        "below": lambda v, x: v < x,
        "at_least": lambda v, x: v >= x,
        "at_most": lambda v, x: v <= x,
    }
    holds = []
    for i, (step, value) in enumerate(series):
        if r.nonfinite:
            holds.append(not math.isfinite(value))
        elif r.plateau is not None:
            covered = [j for j in range(i + 1) if series[j][0] <= step - r.plateau.window]
            span = [v for _, v in series[covered[-1] : i + 1]] if covered else []
            holds.append(bool(span) and all(map(math.isfinite, span)) and max(span) - min(span) < r.plateau.min_delta)
        else:
            kind = next(k for k in compare if getattr(r, k) is not None)
            holds.append(compare[kind](value, getattr(r, kind)))
    for i in range(len(series)):
        if i + 1 >= r.sustain and all(holds[i + 1 - r.sustain : i + 1]):
            return series[i][0], series[i][1], sum(holds)
    return None


def _random_rules(rng: random.Random) -> list[WatchRule]:
    rules = []
    for n in range(rng.randint(1, 6)):
        kind = rng.choice(["above", "below", "at_least", "at_most", "nonfinite", "plateau"])
        condition: Any = {"nonfinite": True, "plateau": {"window": rng.randint(1, 15), "min_delta": 0.15}}.get(
            kind, rng.choice([0.0, 0.5, 1.0])
        )
        window = {"after_step": rng.randint(0, 20)} if rng.random() < 0.3 else {}
        if rng.random() < 0.3:
            window["before_step"] = rng.randint(20, 60)
        rules.append(
            rule(
                name=f"r{n}", metric=rng.choice(["a", "b/c"]), sustain=rng.randint(1, 4), **{kind: condition}, **window
            )
        )
    return rules


def _random_lines(rng: random.Random) -> list[dict[str, Any]]:
    """Metrics lines with gaps, split steps, nulls, NaN/inf and resumes that re-log earlier steps."""
    lines: list[dict[str, Any]] = []
    step, values = 0, {"a": 0.5, "b/c": 0.5}
    for _ in range(rng.randint(0, 60)):
        step = max(0, step - rng.randint(1, 30)) if rng.random() < 0.08 else step + rng.randint(1, 4)
        line: dict[str, Any] = {"step": step, "ts": 0.0}
        for metric in values:
            if rng.random() < 0.3:
                continue
            values[metric] = rng.choice([values[metric]] * 3 + [0.0, 0.5, 1.0, 1.1, NAN, INF, -INF])
            line[metric] = None if rng.random() < 0.03 else values[metric]
        lines.append(line)
    return lines


def test_watch_state_matches_evaluate_and_the_definitions_on_random_runs() -> None:
    rng = random.Random(20240501)
    for _ in range(150):
        rules, lines = _random_rules(rng), _random_lines(rng)
        state = WatchState(rules)
        announced: set[str] = set()
        for i, line in enumerate(lines):
            fresh = state.feed(line)
            assert not announced & {a.rule for a in fresh}
            announced |= {a.rule for a in fresh}
            current = state.alerts
            assert _json(current) == _json(evaluate(rules, lines[: i + 1]))
            assert {a.rule for a in current} <= announced
        expected = {r.name: _oracle(r, lines) for r in rules}
        got: dict[str, tuple[int, float, int] | None] = {r.name: None for r in rules}
        got |= {a.rule: (a.first_step, a.value, a.count) for a in state.alerts}
        assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True), (rules, lines)


# --- configuration --------------------------------------------------------------------------


def _open(tmp_path: Path, text: str) -> str:
    (tmp_path / "campaign.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Campaign.open(tmp_path)
    return str(caught.value)


GOOD = """name = "c"

[[watch]]
name = "spike"
metric = "grad_norm"
above = 2.0
action = "stop"

[[watch]]
name = "flat"
metric = "eval/mean_reward"
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("", "9: watch.1: give exactly one of above, below, at_least, at_most, nonfinite, plateau (got none)"),
        (
            "below = 0.2\nplateau = { window = 70, min_delta = 0.005 }\n",
            "9: watch.1: give exactly one of above, below, at_least, at_most, nonfinite, plateau"
            " (got below and plateau)",
        ),
        ("abov = 2.0\n", "12: watch.1.abov: unknown field"),
        ("above = 2.0\nsustian = 3\n", "13: watch.1.sustian: unknown field"),
        (
            "nonfinite = false\n",
            "12: watch.1.nonfinite: nonfinite can only be true; leave it out otherwise (got False)",
        ),
        ("plateau = { window = 0, min_delta = 0.005 }\n", "12: watch.1.plateau.window: Input should be greater than 0"),
        ("above = 1\nsustain = 0\n", "13: watch.1.sustain: Input should be greater than or equal to 1 (got 0)"),
        ('above = 1\naction = "halt"\n', "13: watch.1.action: Input should be 'stop' or 'warn' (got 'halt')"),
        ('above = "0.5"\n', "12: watch.1.above: Input should be a valid number (got '0.5')"),
        ("above = 1\nafter_step = 200\nbefore_step = 100\n", "9: watch.1: after_step (200) is past before_step (100)"),
        (
            'above = 1\n[[watch]]\nname = "spike"\nmetric = "x"\nbelow = 1\n',
            "14: watch.2.name: name already used by watch.0 (got 'spike')",
        ),
    ],
)
def test_invalid_rules_are_one_config_error_line(tmp_path: Path, extra: str, expected: str) -> None:
    line = _open(tmp_path, GOOD + extra)
    assert line.startswith(f"{tmp_path.resolve() / 'campaign.toml'}:{expected}"), line


def test_valid_rules_load_as_watch_rules(tmp_path: Path) -> None:
    (tmp_path / "campaign.toml").write_text(GOOD + "plateau = { window = 70, min_delta = 0.005 }\n")
    rules = Campaign.open(tmp_path).config.watch
    assert [type(r) for r in rules] == [WatchRule, WatchRule]
    assert rules[1].plateau == Plateau(window=70, min_delta=0.005)
    assert (rules[1].sustain, rules[1].action, rules[1].after_step, rules[1].before_step) == (1, "warn", None, None)
    assert [r.describe() for r in rules] == [
        "grad_norm > 2.0",
        "eval/mean_reward moves less than 0.005 over 70 steps",
    ]


def test_the_v4_1_handoff_table_as_rules(tmp_path: Path) -> None:
    (tmp_path / "campaign.toml").write_text((DATA / "v4_1_campaign.toml").read_text(encoding="utf-8"))
    rules = Campaign.open(tmp_path).config.watch
    lines = read_jsonl(DATA / "v4_1_metrics.jsonl")
    assert len(lines) < 300
    expected = [
        ("reward-plateau", 190, 2),  # flat from 120: covered 70 steps back first at 190; 200 still counts
        ("grad-spike", 235, 1),  # exactly 2.0 at step 120 is not above 2.0
        ("zero-std", 265, 7),  # 150-160 is only three in a row; 250-265 is four
        ("length-ceiling", 280, 5),
    ]  # extraction is below 0.20 only before step 100: no alert
    alerts = evaluate(rules, lines)
    assert [(a.rule, a.first_step, a.count) for a in alerts] == expected
    assert {a.action for a in alerts} == {"stop"}

    state = WatchState(rules)
    live = [(a.rule, a.first_step) for line in lines for a in state.feed(line)]
    assert live == [(name, step) for name, step, _ in expected]
    assert state.alerts == alerts
