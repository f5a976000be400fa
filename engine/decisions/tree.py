"""tree.toml: a decision tree as data, never code, validated whole when it is loaded.

Named by campaign.toml (``tree = "tree.toml"``, a file inside the campaign). Nothing in it is
ever evaluated as an expression: a condition is a fact's name, an operator from a fixed set and
a literal. The format::

    start = "target"                       # the first node

    [facts.eval_600]                       # a named fact: a kind and its parameters (engine.decisions.fact_kinds)
    kind = "metric_at"
    metric = "eval/mean_reward"
    step = 600

    [nodes.target]                         # a condition node
    fact = "eval_600"
    op = ">="                              # < <= > >= == != (numbers, text), in (a list), is (true/false), all_equal
    value = 0.55
    then = "scale-up"                      # where a true condition leads; else: where a false one does
    else = "ask-plateau"
    unknown = "ask-plateau"                # optional: where an unknown fact leads (else the walk stops)

    [nodes.ask-plateau]                    # an ask node: a person answers (--answer plateau=yes)
    ask = "plateau"
    question = "Did eval/mean_reward plateau?"
    facts = ["eval_600"]                   # optional: facts shown beside the question
    choices = { yes = "switch-base", no = "scale-up" }

    [leaves.scale-up]                      # a recommendation
    title = "Scale to the 3.7B model"
    reasons = ["The recipe is validated."] # the tree's own notes, after the deciding facts
    facts = ["eval_600"]                   # optional: facts quoted in the reasons
    config_unset = ["train.epochs"]        # optional: dotted run.toml keys the next run drops
    [leaves.scale-up.config_patch]         # merged into the run's run.toml (tables merge, values and arrays replace)
    train = { learning_rate = 2e-6, max_steps = 400 }

Loading refuses, with one line naming the file, the line and the node: an unknown key, a
reference to a node that does not exist, a cycle, a node or leaf the start cannot reach, an
unknown fact kind or operator, an operator that does not fit its fact or literal, and a
condition written as a string (``when = "reward > 0.3"``) or anything else shaped like code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.decisions.fact_kinds import FACT_KINDS, FactSpec, ValueType
from engine.errors import ConfigError, NotFoundError
from engine.store.campaign import Campaign
from engine.store.config import RunConfig, parse_toml
from engine.store.toml_positions import line_of

OPERATORS = ("<", "<=", ">", ">=", "==", "!=", "in", "is", "all_equal")
# Which operators fit which kind of fact value.
OPERATORS_FOR: dict[ValueType, tuple[str, ...]] = {
    "number": ("<", "<=", ">", ">=", "==", "!=", "in"),
    "bool": ("is", "==", "!="),
    "text": ("==", "!=", "in"),
    "mapping": ("all_equal",),
    "any": ("<", "<=", ">", ">=", "==", "!=", "in", "is"),
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")  # no dots: an id is one TOML key
# Keys someone writing a condition as an expression reaches for.
_EXPRESSION_KEYS = {"when", "if", "condition", "expr", "expression", "test", "check", "eval", "exec", "lambda", "code"}
_CODE_SHAPED = re.compile(r"[<>=!()\[\]{}*+/%&|^~]|\s(and|or|not|in|is|if|else|lambda)\s|__|\bimport\b")
_TOP_KEYS = {"start", "description", "facts", "nodes", "leaves"}
_CONDITION_KEYS = {"fact", "op", "value", "then", "else", "unknown", "description"}
_ASK_KEYS = {"ask", "question", "choices", "facts", "description"}
_LEAF_KEYS = {"title", "reasons", "facts", "config_patch", "config_unset", "description"}


@dataclass(frozen=True)
class Condition:
    """Test one fact with an operator against a literal; go to ``then``, ``otherwise`` or ``unknown``."""

    id: str
    fact: str
    op: str
    value: Any
    then: str
    otherwise: str
    unknown: str | None


@dataclass(frozen=True)
class Ask:
    """Put a question with named choices to a person; each choice leads to a node."""

    id: str
    key: str
    question: str
    choices: dict[str, str]
    facts: tuple[str, ...]


@dataclass(frozen=True)
class Leaf:
    """A recommendation: a title, the tree's notes, facts to quote, and the config patch."""

    id: str
    title: str
    reasons: tuple[str, ...]
    facts: tuple[str, ...]
    config_patch: dict[str, Any]
    config_unset: tuple[str, ...]


Node = Condition | Ask | Leaf


@dataclass(frozen=True)
class DecisionTree:
    """A validated tree: its facts and nodes, every node reachable from ``start``, no cycle."""

    path: Path
    relative: str
    start: str
    facts: dict[str, FactSpec]
    nodes: dict[str, Node]

    def asks(self) -> dict[str, Ask]:
        """The ask nodes by their answer key."""
        return {node.key: node for node in self.nodes.values() if isinstance(node, Ask)}


class _Reader:
    """Raises one ConfigError naming the file, the key's line and the dotted field."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text

    def fail(self, loc: tuple[str | int, ...], message: str) -> ConfigError:
        field = ".".join(str(part) for part in loc if not isinstance(part, int)) or None
        return ConfigError(message, path=self.path, line=line_of(self.text, loc), field=field)

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail((key,), f"expected a table [{key}.<name>]")
        return value

    def string(self, loc: tuple[str, ...], value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(loc, f"expected a non-empty string, got {value!r}")
        return value

    def strings(self, loc: tuple[str, ...], value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(loc, f"expected a list of strings, got {value!r}")
        return tuple(value)

    def ref(self, loc: tuple[str, ...], value: Any) -> str:
        """A node id (then, else, unknown, a choice): refused when it is shaped like an expression."""
        text = self.string(loc, value)
        if not _ID.match(text):
            raise self.fail(loc, f"{_code_or_bad(text)}: name a node or leaf id")
        return text

    def keys(self, loc: tuple[str, ...], table: dict[str, Any], allowed: set[str]) -> None:
        for key, value in table.items():
            if key in _EXPRESSION_KEYS:
                raise self.fail(
                    (*loc, key),
                    f"a condition is data, not an expression ({key} = {value!r}): "
                    'write fact = "<name>", op = ">=", value = <literal>, then/else = "<node>"',
                )
            if key not in allowed:
                raise self.fail((*loc, key), f"unknown field (one of: {', '.join(sorted(allowed))})")


def _code_or_bad(text: str) -> str:
    return f"{text!r} looks like an expression" if _CODE_SHAPED.search(text) else f"{text!r} is not a valid id"


def _parse_fact(reader: _Reader, name: str, table: Any) -> FactSpec:
    loc = ("facts", name)
    if not isinstance(table, dict):
        raise reader.fail(loc, "expected a table with kind = ... (a fact is data, not an expression)")
    kind = table.get("kind")
    if kind not in FACT_KINDS:
        raise reader.fail((*loc, "kind"), f"unknown fact kind {kind!r} (one of: {', '.join(FACT_KINDS)})")
    try:
        spec = FACT_KINDS[kind].model_validate(table)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = tuple(str(p) for p in error["loc"])
        message = "unknown field" if error["type"] == "extra_forbidden" else str(error["msg"])
        if error["type"] != "extra_forbidden" and not isinstance(error.get("input"), dict | list | type(None)):
            message += f" (got {error['input']!r})"
        raise reader.fail((*loc, *where), message.removeprefix("Value error, ")) from None
    key = getattr(spec, "key", None)
    if kind == "config" and not _config_key_known(str(key)):
        raise reader.fail((*loc, "key"), f"{key!r} is not a run.toml setting")
    return spec


def _config_key_known(key: str) -> bool:
    """Whether a dotted key names a setting of run.toml (its schema, defaults filled in)."""
    value: Any = RunConfig().model_dump(by_alias=True)
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def _literal_fits(op: str, value: Any, kind: ValueType) -> str | None:
    """Why the literal does not fit the operator (None when it does)."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if op == "all_equal":
        return None if value is None else "all_equal takes no value"
    if value is None:
        return f"op {op!r} needs a value"
    if op in ("<", "<=", ">", ">=") and not numeric:
        return f"op {op!r} compares numbers, got value = {value!r}"
    if op == "is" and not isinstance(value, bool):
        return f"op 'is' takes value = true or false, got {value!r}"
    if op == "in" and not isinstance(value, list):
        return f"op 'in' takes a list, got value = {value!r}"
    if op in ("==", "!=") and kind == "number" and not numeric:
        return f"the fact is a number, got value = {value!r}"
    return None


def _parse_condition(reader: _Reader, node_id: str, table: dict[str, Any], facts: dict[str, FactSpec]) -> Condition:
    loc = ("nodes", node_id)
    reader.keys(loc, table, _CONDITION_KEYS)
    fact = reader.string((*loc, "fact"), table.get("fact"))
    if fact not in facts:
        detail = _code_or_bad(fact) if not _ID.match(fact) else f"no fact named {fact!r} in [facts]"
        raise reader.fail((*loc, "fact"), detail)
    op = table.get("op")
    if op not in OPERATORS:
        raise reader.fail((*loc, "op"), f"unknown operator {op!r} (one of: {' '.join(OPERATORS)})")
    kind = facts[fact].value_type()
    if op not in OPERATORS_FOR[kind]:
        raise reader.fail((*loc, "op"), f"{fact} is a {kind} fact: op is one of {' '.join(OPERATORS_FOR[kind])}")
    value = table.get("value")
    problem = _literal_fits(op, value, kind)
    if problem:
        raise reader.fail((*loc, "value" if "value" in table else "op"), problem)
    for branch in ("then", "else"):
        if branch not in table:
            raise reader.fail(loc, f'a condition needs {branch} = "<node>"')
    unknown = reader.ref((*loc, "unknown"), table["unknown"]) if "unknown" in table else None
    return Condition(
        node_id, fact, op, value, reader.ref((*loc, "then"), table["then"]), reader.ref((*loc, "else"), table["else"]),
        unknown,
    )  # fmt: skip


def _parse_ask(reader: _Reader, node_id: str, table: dict[str, Any], facts: dict[str, FactSpec]) -> Ask:
    loc = ("nodes", node_id)
    reader.keys(loc, table, _ASK_KEYS)
    key = reader.string((*loc, "ask"), table.get("ask"))
    if not _ID.match(key):
        raise reader.fail((*loc, "ask"), f"{_code_or_bad(key)}: an answer key is a plain name")
    choices = table.get("choices")
    if not isinstance(choices, dict) or len(choices) < 2:
        raise reader.fail((*loc, "choices"), 'give at least two named choices: choices = { yes = "<node>", ... }')
    for choice in choices:
        if not _ID.match(choice):
            raise reader.fail((*loc, "choices", choice), f"{choice!r} is not a plain choice name")
    shown = _fact_names(reader, (*loc, "facts"), table.get("facts", []), facts)
    return Ask(
        node_id, key, reader.string((*loc, "question"), table.get("question")),
        {c: reader.ref((*loc, "choices", c), target) for c, target in choices.items()}, shown,
    )  # fmt: skip


def _fact_names(reader: _Reader, loc: tuple[str, ...], value: Any, facts: dict[str, FactSpec]) -> tuple[str, ...]:
    names = reader.strings(loc, value)
    for name in names:
        if name not in facts:
            raise reader.fail(loc, f"no fact named {name!r} in [facts]")
    return names


def _parse_leaf(reader: _Reader, leaf_id: str, table: Any, facts: dict[str, FactSpec]) -> Leaf:
    loc = ("leaves", leaf_id)
    if not isinstance(table, dict):
        raise reader.fail(loc, "expected a table with title = ...")
    reader.keys(loc, table, _LEAF_KEYS)
    patch = table.get("config_patch", {})
    if not isinstance(patch, dict):
        raise reader.fail((*loc, "config_patch"), "expected a table of run.toml settings")
    return Leaf(
        leaf_id,
        reader.string((*loc, "title"), table.get("title")),
        reader.strings((*loc, "reasons"), table.get("reasons", [])),
        _fact_names(reader, (*loc, "facts"), table.get("facts", []), facts),
        patch,
        reader.strings((*loc, "config_unset"), table.get("config_unset", [])),
    )


def _parse_node(reader: _Reader, node_id: str, table: Any, facts: dict[str, FactSpec]) -> Node:
    loc = ("nodes", node_id)
    if not isinstance(table, dict):
        raise reader.fail(
            loc, f"a condition is data, not an expression (got {table!r}): write a [nodes.{node_id}] table"
        )
    has_fact, has_ask = "fact" in table, "ask" in table
    if has_fact and has_ask:
        raise reader.fail(loc, "a node is a condition (fact = ...) or an ask (ask = ...), not both")
    if has_ask:
        return _parse_ask(reader, node_id, table, facts)
    if has_fact:
        return _parse_condition(reader, node_id, table, facts)
    reader.keys(loc, table, _CONDITION_KEYS | _ASK_KEYS)
    raise reader.fail(loc, "a node needs fact = ... (a condition) or ask = ... (a question)")


def _edges(node: Node) -> list[tuple[str, str]]:
    """(field, target) of a node's branches, in the order they are written."""
    if isinstance(node, Condition):
        pairs = [("then", node.then), ("else", node.otherwise)]
        return pairs + ([("unknown", node.unknown)] if node.unknown else [])
    if isinstance(node, Ask):
        return [(f"choices.{choice}", target) for choice, target in node.choices.items()]
    return []


def _check_graph(reader: _Reader, start: str, nodes: dict[str, Node]) -> None:
    """Every reference resolves, no cycle, and every node and leaf is reachable from ``start``."""
    for node in nodes.values():
        section = "leaves" if isinstance(node, Leaf) else "nodes"
        for field, target in _edges(node):
            if target not in nodes:
                raise reader.fail((section, node.id, *field.split(".")), f"unknown node {target!r}")
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node_id: str, trail: list[str]) -> None:
        state[node_id] = 1
        for field, target in _edges(nodes[node_id]):
            if state.get(target) == 1:
                cycle = " -> ".join([*trail[trail.index(target) :], node_id, target])
                raise reader.fail(("nodes", node_id, *field.split(".")), f"cycle: {cycle}")
            if target not in state:
                visit(target, [*trail, node_id])
        state[node_id] = 2

    visit(start, [])
    for node_id, node in nodes.items():
        if node_id not in state:
            section = "leaves" if isinstance(node, Leaf) else "nodes"
            raise reader.fail((section, node_id), f"unreachable: no path from start {start!r} leads to it")


def parse_tree(path: Path, text: str, *, relative: str | None = None) -> DecisionTree:
    """Parse and validate tree.toml text; the first problem becomes one ConfigError."""
    reader = _Reader(path, text)
    data = parse_toml(path, text)
    for key in data:
        if key not in _TOP_KEYS:
            raise reader.fail((key,), f"unknown field (one of: {', '.join(sorted(_TOP_KEYS))})")
    facts = {name: _parse_fact(reader, name, table) for name, table in reader.table(data, "facts").items()}
    nodes: dict[str, Node] = {}
    for section, parse in (("nodes", _parse_node), ("leaves", _parse_leaf)):
        for node_id, table in reader.table(data, section).items():
            if not _ID.match(node_id):
                raise reader.fail((section, node_id), f"{node_id!r} is not a valid id (letters, digits, _ and -)")
            if node_id in nodes:
                raise reader.fail((section, node_id), f"{node_id!r} is both a node and a leaf")
            nodes[node_id] = parse(reader, node_id, table, facts)
    if not nodes:
        raise reader.fail(("leaves",), "the tree has no leaves")
    start = reader.string(("start",), data.get("start"))
    if start not in nodes:
        raise reader.fail(("start",), f"unknown node {start!r}")
    _check_graph(reader, start, nodes)
    keys: dict[str, str] = {}
    for node in nodes.values():
        if isinstance(node, Ask):
            if node.key in keys:
                raise reader.fail(
                    ("nodes", node.id, "ask"), f"answer key {node.key!r} is already asked by {keys[node.key]}"
                )
            keys[node.key] = node.id
    return DecisionTree(path, relative or path.name, start, facts, nodes)


def tree_path(campaign: Campaign) -> tuple[Path, str]:
    """The campaign's tree file (inside the campaign, never through a link out of it) and its name."""
    relative = campaign.config.tree
    if relative is None:
        raise NotFoundError(
            'no decision tree: add tree = "tree.toml" to campaign.toml', path=campaign.root / "campaign.toml"
        )
    path = campaign.resolve(relative)
    if campaign.root.resolve() not in path.parents:
        raise ConfigError(
            f"{relative!r} is outside the campaign folder", path=campaign.root / "campaign.toml", field="tree"
        )
    return path, relative


def load_tree(campaign: Campaign) -> DecisionTree:
    """Read and validate the tree campaign.toml names."""
    path, relative = tree_path(campaign)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found (named by campaign.toml's tree)", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read ({exc})", path=path) from None
    return parse_tree(path, text, relative=relative)
