"""Malformed trees are refused on load with one line naming file, line and node (exit 2), and nothing runs.

Each fixture in tests/data/decide/trees/ changes one thing of ok.toml; the real CLI reads it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.decisions.tree import Ask, Condition, Leaf, parse_tree
from engine.errors import ConfigError
from engine.store.config import CampaignConfig, validate_toml
from tests.decide_fixtures import TREES, tree_campaign
from tests.helpers import tunedeck

# (fixture, line, field, words of the message)
MALFORMED = [
    ("cycle.toml", 17, "nodes.b.choices.yes", "cycle: a -> b -> a"),
    ("dangling.toml", 12, "nodes.check.else", "unknown node 'nowhere'"),
    ("unreachable.toml", 17, "leaves.orphan", "unreachable: no path from start 'check'"),
    ("unknown_kind.toml", 4, "facts.last_loss.kind", "unknown fact kind 'metric_median'"),
    ("unknown_op.toml", 9, "nodes.check.op", "unknown operator '=~'"),
    ("string_condition.toml", 4, "nodes.check.when", "a condition is data, not an expression"),
    ("python_fact.toml", 8, "nodes.check.fact", "looks like an expression"),
    ("python_branch.toml", 11, "nodes.check.then", "looks like an expression"),
    ("op_mismatch.toml", 8, "nodes.check.op", "passes is a bool fact: op is one of is == !="),
    ("bad_param.toml", 6, "facts.at_600.step", "valid integer (got '600')"),
]


@pytest.mark.parametrize(("fixture", "line", "field", "words"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_the_cli_refuses_a_malformed_tree_in_one_line(
    tmp_path: Path, fixture: str, line: int, field: str, words: str
) -> None:
    campaign = tree_campaign(tmp_path / "c", (TREES / fixture).read_text(encoding="utf-8"))
    done = tunedeck("decide", "r1", "--campaign", str(campaign.root))
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"tunedeck: {campaign.root / 'tree.toml'}:{line}: {field}: "), lines[0]
    assert words in lines[0]
    assert not (campaign.root / "runs" / "r1" / "decisions").exists()  # nothing walked, nothing saved


def test_nothing_in_a_tree_is_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = (TREES / "python_fact.toml").read_text(encoding="utf-8").replace("/tmp/pwned", str(marker))
    campaign = tree_campaign(tmp_path / "c", text)
    assert tunedeck("decide", "r1", "--campaign", str(campaign.root)).returncode == 2
    assert not marker.exists()


def test_the_valid_tree_loads_with_its_nodes() -> None:
    path = TREES / "ok.toml"
    tree = parse_tree(path, path.read_text(encoding="utf-8"))
    assert tree.start == "check"
    check, ask, good = tree.nodes["check"], tree.nodes["ask"], tree.nodes["good"]
    assert isinstance(check, Condition)
    assert (check.op, check.value, check.unknown) == ("<", 1.0, "ask")
    assert isinstance(ask, Ask)
    assert ask.choices == {"yes": "good", "no": "bad"}
    assert isinstance(good, Leaf)
    assert good.config_patch == {"train": {"learning_rate": 1e-4}}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (('op = "<"\nvalue = 1.0', 'op = "=="\nvalue = "1.0"'), "the fact is a number"),  # a literal of the wrong type
        (('op = "<"', 'op = "in"'), "op 'in' takes a list"),
        (("[leaves.bad]", "[nodes.bad]"), "nodes.bad.title: unknown field"),
        (('start = "check"', 'start = "nope"'), "unknown node 'nope'"),
        (
            ('kind = "metric_last"\nmetric = "loss"', 'kind = "config"\nkey = "lora.rank"'),
            "'lora.rank' is not a run.toml",
        ),
        (('question = "Did it learn?"', 'question = "Did it learn?"\nlambda = "x: x"'), "not an expression"),
    ],
)
def test_other_mistakes_name_their_node(change: tuple[str, str], words: str) -> None:
    text = (TREES / "ok.toml").read_text(encoding="utf-8").replace(*change)
    with pytest.raises(ConfigError, match=words):
        parse_tree(Path("tree.toml"), text)


def test_campaign_toml_names_a_tree_inside_the_campaign(tmp_path: Path) -> None:
    assert validate_toml(Path("c.toml"), 'name = "c"\ntree = "trees/v2.toml"\n', CampaignConfig).tree == "trees/v2.toml"
    for outside in ("../tree.toml", "/etc/passwd", "~/tree.toml"):
        with pytest.raises(ConfigError, match="a file inside the campaign folder") as caught:
            validate_toml(Path("c.toml"), f'name = "c"\ntree = "{outside}"\n', CampaignConfig)
        assert (caught.value.line, caught.value.field) == (2, "tree")


def test_a_campaign_without_a_tree_says_how_to_add_one(tmp_path: Path) -> None:
    campaign = tree_campaign(tmp_path / "c", "")
    (campaign.root / "campaign.toml").write_text('name = "decide"\n', encoding="utf-8")
    done = tunedeck("decide", "r1", "--campaign", str(campaign.root))
    assert done.returncode == 2
    assert 'no decision tree: add tree = "tree.toml" to campaign.toml' in done.stderr
