"""The GRPO reward registry: each function, the JSON-fields parser on PT-BR decimals, users' modules, combining."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError
from engine.store.datasets import PromptRow
from engine.store.method_config import GrpoMethod, RewardSpec, user_reward_file
from engine.worker.rewards import RewardSet, completion_text
from engine.worker.rewards.builtin import BUILTIN, RewardScore, json_field_score

DATA = Path(__file__).parent / "data" / "trl"


def row(**fields: Any) -> PromptRow:
    return PromptRow(lineno=1, fields=fields, prompt=str(fields.pop("prompt", "p")))


def scores(fn: str, completions: list[str], rows: list[PromptRow], **options: Any) -> list[tuple[float, str | None]]:
    spec = RewardSpec.model_validate({"fn": fn, **options})
    return [(s.value, s.reason) for s in BUILTIN[fn](spec, completions, rows)]


# --- JSON fields: the acceptance cases ---------------------------------------------------------

PT_BR = '{"sentiment_score": 4,5, "label": "neg"}'
WANT = {"sentiment_score": 4.5, "label": "neg"}


@pytest.mark.parametrize(
    "completion",
    [
        PT_BR,
        f"Claro! Aqui está a análise: {PT_BR} Espero ter ajudado.",
        f"```json\n{PT_BR}\n```",
        f"Resultado:\n```\n{PT_BR}\n```\nfim",
    ],
    ids=["bare", "prose", "json-fence", "plain-fence"],
)
def test_json_fields_reads_a_decimal_comma_in_prose_or_a_fence(completion: str) -> None:
    assert json_field_score(completion, WANT) == RewardScore(1.0, None)
    assert json_field_score(completion, WANT, partial=False).value == 1.0
    assert json_field_score(completion, {"sentiment_score": 4.0}).value == 0.0  # 4,5 is 4.5, not 4


def test_json_fields_leaves_commas_inside_strings_alone() -> None:
    completion = '{"label": "neg", "note": "nota: 4,5, ruim", "sentiment_score": 4,5}'
    assert json_field_score(completion, {"note": "nota: 4,5, ruim", "sentiment_score": 4.5}).value == 1.0
    assert json_field_score(completion, {"note": "nota: 4.5, ruim"}).value == 0.0


@pytest.mark.parametrize("completion", ["não sei", "sentiment_score: 4,5", "{not json at all}", ""])
def test_what_is_not_json_scores_0_with_a_reason(completion: str) -> None:
    score = json_field_score(completion, WANT)
    assert score.value == 0.0
    assert score.reason is not None
    assert score.reason.startswith("no JSON object in the completion")


def test_json_fields_gives_partial_credit_per_field_and_says_which_is_wrong() -> None:
    score = json_field_score('{"sentiment_score": 4,5, "label": "pos"}', WANT)
    assert score.value == 0.5
    assert score.reason is not None
    assert "label" in score.reason
    assert json_field_score('{"sentiment_score": 4,5, "label": "pos"}', WANT, partial=False).value == 0.0


# Strings without backticks (a fence inside a value would end the code block) or backslashes.
_text = st.text(st.characters(blacklist_characters='`\\"', blacklist_categories=("Cs", "Cc")), max_size=12)
_decimal = st.tuples(st.integers(-999, 999), st.integers(1, 999))
_value = st.one_of(_text, st.integers(-(10**6), 10**6), st.booleans(), st.none(), _decimal)
_objects = st.dictionaries(st.text(st.characters(categories=("L", "N")), min_size=1, max_size=8), _value, min_size=1)


def _render(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``obj`` as a model might write it (decimals with a comma) and the object it means."""
    parts, meant = [], {}
    for key, value in obj.items():
        if isinstance(value, tuple):
            whole, frac = value
            sign = "-" if whole < 0 else ""
            parts.append(f"{json.dumps(key)}: {sign}{abs(whole)},{frac}")
            meant[key] = float(f"{sign}{abs(whole)}.{frac}")
        else:
            parts.append(f"{json.dumps(key, ensure_ascii=False)}: {json.dumps(value, ensure_ascii=False)}")
            meant[key] = value
    return "{" + ", ".join(parts) + "}", meant


@settings(max_examples=150, deadline=None, database=None)
@given(obj=_objects, wrapper=st.sampled_from(["{}", "Resposta: {} .", "```json\n{}\n```", "ok\n```\n{}\n```"]))
def test_property_any_object_survives_decimal_commas_prose_and_fences(obj: dict[str, Any], wrapper: str) -> None:
    text, meant = _render(obj)
    score = json_field_score(wrapper.replace("{}", text, 1), meant, partial=False)
    assert score.value == 1.0, (text, score.reason)


# --- the other registry functions --------------------------------------------------------------


def test_exact_match_and_contains() -> None:
    rows = [row(answer="c b a"), row(answer="c b a")]
    assert scores("exact_match", [" c b a\n", "c b"], rows) == [(1.0, None), (0.0, "expected 'c b a', got 'c b'")]
    got = scores("contains", ["it is C B A", "c b a!"], rows)
    assert [value for value, _ in got] == [0.0, 1.0]
    assert [v for v, _ in scores("contains", ["it is C B A"], rows[:1], case_sensitive=False)] == [1.0]
    assert [v for v, _ in scores("exact_match", ["x"], [row(gold="x")], column="gold")] == [1.0]


def test_length_and_format() -> None:
    lengths = scores("length", ["abc", "abcdef", "abcdefghijkl", "a" * 30], [row()] * 4, min_chars=4, max_chars=8)
    assert [round(v, 3) for v, _ in lengths] == [0.75, 1.0, 0.5, 0.0]
    assert lengths[0][1] == "3 characters, fewer than 4"
    fmt = scores("format", ["c b a", "c,b,a"], [row()] * 2, pattern=r"[a-h]( [a-h])*", full_match=True)
    assert [v for v, _ in fmt] == [1.0, 0.0]


def test_python_tests_run_in_the_bench_sandbox() -> None:
    rows = [
        row(tests="assert completion.strip() == 'c b a'"),
        row(tests="import socket; socket.create_connection(('1.1.1.1', 53), 1)"),
    ]
    got = scores("python_tests", ["c b a", "anything"], rows, timeout_s=20)
    assert got[0] == (1.0, None)
    assert got[1][0] == 0.0  # no network inside the fence
    assert got[1][1]


# --- a user's module -------------------------------------------------------------------------


@pytest.fixture
def campaign_root(tmp_path: Path) -> Path:
    root = tmp_path / "campaign"
    root.mkdir()
    (root / "campaign.toml").write_text('name = "c"\n')
    shutil.copy(DATA / "my_rewards.py", root / "my_rewards.py")
    return root


def grpo(*rewards: dict[str, Any]) -> GrpoMethod:
    return GrpoMethod.model_validate({"name": "grpo", "rewards": list(rewards)})


def test_a_users_module_is_loaded_from_the_campaign_and_combined_with_weights(campaign_root: Path) -> None:
    method = grpo({"fn": "my_rewards:extraction", "columns": ["answer"], "weight": 2.0}, {"fn": "exact_match"})
    rewards = RewardSet(method, campaign_root)
    rows = [row(answer="c b a", task="t1"), row(answer="b a", task="t2")]
    assert rewards.names == ["my_rewards.extraction", "exact_match"]
    assert rewards.score(["c x", "b a"], rows) == [[1.0, 1.0], [0.0, 1.0]]
    assert rewards.total(["c x", "b a"], rows) == [2.0, 3.0]
    first, second = rewards.trl_functions(rows)
    assert first.__name__ == "my_rewards.extraction"  # logged as rewards/my_rewards.extraction/mean
    chat = [[{"role": "assistant", "content": "b a"}]]
    assert second(prompts=["p"], completions=chat, row_index=[1], task=["t2"]) == [1.0]
    assert completion_text(chat[0]) == "b a"


def test_a_users_module_outside_the_campaign_is_refused(campaign_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.py"
    outside.write_text("def extraction(completions, **kw):\n    return [1.0] * len(completions)\n")
    (campaign_root / "sneaky.py").symlink_to(outside)
    with pytest.raises(ValueError, match=r"sneaky.py leads outside the campaign folder"):
        user_reward_file(campaign_root, "sneaky:extraction")
    with pytest.raises(ValueError, match=r"no module 'elsewhere' in the campaign folder"):
        user_reward_file(campaign_root, "elsewhere:extraction")
    with pytest.raises(ValueError, match=r"my_rewards.py defines no function 'missing' at top level"):
        user_reward_file(campaign_root, "my_rewards:missing")
    with pytest.raises(ConfigError, match=r"method.rewards.fn: .*leads outside"):
        RewardSet(grpo({"fn": "sneaky:extraction"}), campaign_root)


def test_nan_rewards_count_as_zero_in_the_total(campaign_root: Path) -> None:
    (campaign_root / "none_rewards.py").write_text(
        "def maybe(completions, **kw):\n    return [None] * len(completions)\n"
    )
    rewards = RewardSet(grpo({"fn": "none_rewards:maybe"}, {"fn": "exact_match", "weight": 0.5}), campaign_root)
    scored = rewards.score(["c b a"], [row(answer="c b a")])
    assert math.isnan(scored[0][0])
    assert rewards.total(["c b a"], [row(answer="c b a")]) == [0.5]


def test_a_pattern_that_backtracks_scores_zero_instead_of_hanging_the_run() -> None:
    import time

    from engine.worker.rewards.builtin import MATCH_TIMEOUT_S, format_match

    spec = RewardSpec.model_validate({"fn": "format", "pattern": r"(a|aa)+$"})
    started = time.monotonic()
    scores = format_match(spec, ["a" * 40 + "b", "aaaa"], [])
    assert time.monotonic() - started < 4 * MATCH_TIMEOUT_S
    assert scores[0].value == 0.0
    assert scores[0].reason is not None
    assert "backtracks" in scores[0].reason
    assert scores[1].value == 1.0
