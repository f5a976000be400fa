"""Walk a decision tree over a run's facts: from ``start`` to a leaf, an unanswered ask, or an unknown fact.

Every fact the tree declares is evaluated once, on the run being decided (or the run a fact
names). A condition whose fact is unknown takes its ``unknown`` branch; without one the walk
stops there (status ``unknown``) — never a guess. An ask takes its answer from ``answers``
(``--answer KEY=CHOICE``); without one the walk stops with the question (status ``question``).
A leaf is the recommendation: its reasons quote every deciding fact with its value
("eval/mean_reward at step 600 = 0.58 >= 0.55"), then the answers given, the facts the leaf
names, and the tree's own notes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from engine.api import DecisionWalk, FactResult, Question, Recommendation, WalkStep
from engine.decisions.facts import FactContext, Known, evaluate_fact, format_value
from engine.decisions.tree import Ask, Condition, DecisionTree, Leaf
from engine.errors import TunedeckError
from engine.store.campaign import Campaign
from engine.store.numbers import is_number


class AnswerError(TunedeckError):
    """An --answer for a key no ask node has, or a choice the ask does not offer."""


def check_answers(tree: DecisionTree, answers: dict[str, str]) -> None:
    """Every answer names an ask of the tree and one of its choices."""
    asks = tree.asks()
    for key, choice in answers.items():
        if key not in asks:
            known = ", ".join(sorted(asks)) or "none"
            raise AnswerError(f"no ask node has the key {key!r} (keys: {known})", path=tree.path, field="--answer")
        if choice not in asks[key].choices:
            offered = ", ".join(asks[key].choices)
            raise AnswerError(
                f"{key}: {choice!r} is not a choice (one of: {offered})", path=tree.path, field="--answer"
            )


def json_safe(value: Any) -> Any:
    """A fact value as JSON holds it: a non-finite float as "NaN" / "Infinity" / "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def compare(op: str, value: Any, operand: Any) -> bool | None:
    """The condition on a known value; None when the value cannot be compared that way."""
    numeric = is_number(value) and is_number(operand)
    if op in ("<", "<=", ">", ">="):
        if not numeric:
            return None
        return {"<": value < operand, "<=": value <= operand, ">": value > operand, ">=": value >= operand}[op]
    if op == "==":
        return value == operand if type(value) is type(operand) or numeric else False
    if op == "!=":
        return not (value == operand if type(value) is type(operand) or numeric else False)
    if op == "in":
        return value in operand
    if op == "is":
        return value is operand if isinstance(value, bool) else None
    if op == "all_equal":
        values = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else None
        return None if not values else all(v == values[0] for v in values)
    return None


def _quote(label: str, known: Known) -> str:
    """A fact as a reason quotes it: 'label = value (detail)'."""
    detail = f" ({known.detail})" if known.detail else ""
    if not known.known:
        return f"{label}: unknown{detail}"
    return f"{label} = {format_value(known.value)}{detail}"


def _condition_text(label: str, known: Known, op: str, operand: Any, holds: bool) -> str:
    detail = f" ({known.detail})" if known.detail else ""
    value = format_value(known.value)
    if op == "is":
        return f"{label}: {value}{detail}"
    if op == "all_equal":
        return f"{label} = {value}{detail}: {'all equal' if holds else 'not all equal'}"
    test = f"{op} {format_value(operand)}"
    return f"{label} = {value}{detail} {test}" if holds else f"{label} = {value}{detail}, not {test}"


class _Walker:
    """One walk: the facts evaluated once, then nodes followed from the start."""

    def __init__(self, campaign: Campaign, tree: DecisionTree, run: str, answers: dict[str, str]) -> None:
        self.tree, self.run, self.answers = tree, run, answers
        context = FactContext(campaign, run)
        self.known = {name: evaluate_fact(spec, context) for name, spec in tree.facts.items()}
        self.labels = {name: spec.label_for(spec.run or run, run) for name, spec in tree.facts.items()}
        self.steps: list[WalkStep] = []
        self.quoted: set[str] = set()
        self.questions: list[Question] = []
        self.stopped: str | None = None
        self.recommendation: Recommendation | None = None

    def facts(self) -> dict[str, FactResult]:
        return {
            name: FactResult(
                kind=spec.kind,
                label=self.labels[name],
                run=spec.run or self.run,
                known=self.known[name].known,
                value=json_safe(self.known[name].value),
                detail=self.known[name].detail,
            )  # fmt: skip
            for name, spec in self.tree.facts.items()
        }

    def step(self, node_id: str, kind: Any, text: str, **fields: Any) -> None:
        values = {"fact": None, "value": None, "op": None, "operand": None, "branch": None, "next": None, **fields}
        self.steps.append(WalkStep(node=node_id, kind=kind, text=text, **values))

    def condition(self, node: Condition) -> str | None:
        known = self.known[node.fact]
        if node.fact in self.quoted and known.known:
            known = Known(True, known.value, None)  # its detail is in an earlier reason already
        self.quoted.add(node.fact)
        label = self.labels[node.fact]
        holds = compare(node.op, known.value, node.value) if known.known else None
        common = {"fact": node.fact, "value": json_safe(known.value), "op": node.op, "operand": node.value}
        if holds is None:
            why = known.detail if not known.known else f"{format_value(known.value)} cannot be tested with {node.op}"
            text = f"{label}: unknown ({why})"
            if node.unknown is None:
                self.step(node.id, "condition", text, **common)
                self.stopped = f"{node.id}: {label} is unknown ({why}) and the node has no unknown branch"
                return None
            self.step(node.id, "condition", text, branch="unknown", next=node.unknown, **common)
            return node.unknown
        target = node.then if holds else node.otherwise
        text = _condition_text(label, known, node.op, node.value, holds)
        self.step(node.id, "condition", text, branch="then" if holds else "else", next=target, **common)
        return target

    def ask(self, node: Ask) -> str | None:
        choice = self.answers.get(node.key)
        if choice is None:
            self.step(node.id, "ask", f"asked: {node.question}")
            self.questions.append(
                Question(node=node.id, key=node.key, question=node.question, choices=list(node.choices),
                         facts=list(node.facts))
            )  # fmt: skip
            self.stopped = f"{node.id}: waiting for an answer (--answer {node.key}=" + "|".join(node.choices) + ")"
            return None
        target = node.choices[choice]
        self.step(node.id, "ask", f"{node.question} answered: {node.key} = {choice}", branch=choice, next=target)
        return target

    def leaf(self, node: Leaf) -> None:
        self.step(node.id, "leaf", node.title)
        deciding = [s.text for s in self.steps if s.kind != "leaf"]
        quoted = [_quote(self.labels[name], self.known[name]) for name in node.facts]
        self.recommendation = Recommendation(
            id=node.id, title=node.title, reasons=[*deciding, *quoted, *node.reasons],
            config_patch=node.config_patch, config_unset=list(node.config_unset),
        )  # fmt: skip

    def walk(self) -> list[str]:
        path: list[str] = []
        current: str | None = self.tree.start
        while current is not None:
            path.append(current)
            node = self.tree.nodes[current]
            if isinstance(node, Leaf):
                self.leaf(node)
                break
            current = self.condition(node) if isinstance(node, Condition) else self.ask(node)
        return path


def walk_tree(campaign: Campaign, tree: DecisionTree, run: str, answers: dict[str, str]) -> DecisionWalk:
    """Walk ``tree`` over ``run``'s facts with ``answers``; the walk, not yet saved (``walk`` is None)."""
    campaign.load_run(run)  # an unknown run is an error, not a walk over nothing
    check_answers(tree, answers)
    walker = _Walker(campaign, tree, run, answers)
    path = walker.walk()
    status = "recommended" if walker.recommendation else ("question" if walker.questions else "unknown")
    return DecisionWalk(
        walk=None, run=run, tree=tree.relative, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        status=status, recommendation=walker.recommendation, path=path, steps=walker.steps, facts=walker.facts(),
        questions=walker.questions, answers=dict(answers), stopped=walker.stopped, replay_of=None, changed_facts=[],
    )  # fmt: skip
