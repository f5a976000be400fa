"""Decisions: a walk of the campaign's decision tree over a run's facts, and the tree itself.

``tunedeck decide RUN --json`` and ``POST /runs/{run}/decide`` answer a ``DecisionWalk``; the
TUI's Decide screen draws ``GET /tree`` (``DecisionTreeView``) and each walk's ``steps``.
Values are JSON values as the tree and the run's files hold them; a non-finite metric is the
string "NaN", "Infinity" or "-Infinity".
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from engine.api.base import ApiModel

WalkStatus = Literal["recommended", "question", "unknown"]
NodeKind = Literal["condition", "ask", "leaf"]


class FactResult(ApiModel):
    """One fact of the tree evaluated on a run: its value, or why it is not known."""

    kind: str = Field(description="the fact kind, e.g. metric_at, plateau, gate, anchors_peak")
    label: str = Field(description="what the fact is, in words: 'eval/mean_reward at step 600'")
    run: str = Field(description="the run it was evaluated on (the decided run unless the tree names one)")
    known: bool
    value: JsonValue = Field(description="null when not known")
    detail: str | None = Field(description="where the value comes from (logged at step 590, rows ...), or why unknown")


class WalkStep(ApiModel):
    """One node on the walk's path: what it tested or asked, and which way the walk went."""

    node: str
    kind: NodeKind
    fact: str | None = Field(description="the fact a condition tested")
    value: JsonValue = Field(description="that fact's value (null when unknown)")
    op: str | None = Field(description="the condition's operator")
    operand: JsonValue = Field(description="the literal it was compared with")
    branch: str | None = Field(description="then | else | unknown, an ask's chosen answer; null where the walk stopped")
    next: str | None = Field(description="the node the branch led to")
    text: str = Field(description="the step as a reason: 'eval/mean_reward at step 600 = 0.58 >= 0.55'")


class Question(ApiModel):
    """An ask node the walk stopped at: answer it with ``--answer KEY=CHOICE`` (or ``answers`` in a request)."""

    node: str
    key: str
    question: str
    choices: list[str]
    facts: list[str] = Field(description="facts the tree shows beside the question")


class Recommendation(ApiModel):
    """The leaf the walk reached: the next run, why, and the patch that turns this run's config into it."""

    id: str
    title: str
    reasons: list[str] = Field(description="each deciding fact with its value, then the tree's own notes")
    config_patch: dict[str, JsonValue] = Field(description="nested tables merged into run.toml (arrays replace)")
    config_unset: list[str] = Field(description="dotted run.toml keys the next run removes")


class FactChange(ApiModel):
    """A fact whose value differs between a saved walk and its replay."""

    fact: str
    before: JsonValue
    after: JsonValue


class DecisionWalk(ApiModel):
    """``tunedeck decide RUN --json``: the walk, saved as runs/<run>/decisions/<walk>.json."""

    walk: str | None = Field(description="the saved walk's id (runs/<run>/decisions/<walk>.json)")
    run: str
    tree: str = Field(description="the tree file, relative to the campaign")
    created_at: str
    status: WalkStatus = Field(description="recommended | question (an ask is unanswered) | unknown (a fact is)")
    recommendation: Recommendation | None
    path: list[str] = Field(description="node ids from the start to where the walk ended")
    steps: list[WalkStep]
    facts: dict[str, FactResult]
    questions: list[Question] = Field(description="unanswered asks where the walk stopped")
    answers: dict[str, str] = Field(description="the answers the walk was given, by ask key")
    stopped: str | None = Field(description="why the walk stopped without a recommendation")
    replay_of: str | None = Field(description="the saved walk this one replays")
    changed_facts: list[FactChange] = Field(description="facts that differ from the replayed walk")


class WalkSummary(ApiModel):
    """One saved walk in ``GET /runs/{run}/decisions``."""

    walk: str
    created_at: str
    status: WalkStatus
    recommendation: str | None = Field(description="the leaf id reached")
    answers: dict[str, str]
    replay_of: str | None


class DecideRequest(ApiModel):
    """Body of ``POST /runs/{run}/decide``."""

    answers: dict[str, str] = Field(default_factory=dict, description="ask key -> choice")
    replay: str | None = Field(None, description="a saved walk whose answers to walk again")


class TreeFact(ApiModel):
    """A fact the tree declares: its kind and its parameters, as written."""

    name: str
    kind: str
    label: str
    params: dict[str, JsonValue]


class TreeNode(ApiModel):
    """A node of the tree: a condition (fact, op, operand), an ask (key, question) or a leaf (title)."""

    id: str
    kind: NodeKind
    fact: str | None
    op: str | None
    operand: JsonValue
    key: str | None = Field(description="an ask's answer key")
    question: str | None
    title: str | None = Field(description="a leaf's title")
    facts: list[str] = Field(description="facts an ask or a leaf shows")
    branches: dict[str, str] = Field(description="then/else/unknown, or choice -> node id; empty for a leaf")


class DecisionTreeView(ApiModel):
    """``GET /tree``: the campaign's decision tree, validated."""

    tree: str
    start: str
    facts: list[TreeFact]
    nodes: list[TreeNode]
    leaves: list[Recommendation] = Field(description="each leaf's title, notes and patch (reasons: its own notes)")


class NextRunRequest(ApiModel):
    """Body of ``POST /runs/{run}/from-decision``."""

    new_run: str = Field(min_length=1, max_length=100)


class NextRun(ApiModel):
    """``tunedeck run --from-decision RUN NEW_RUN --json``: the run.toml written from a walk's patch."""

    run: str = Field(description="the new run")
    parent: str
    walk: str
    recommendation: str
    run_toml: str = Field(description="relative to the campaign")
    start: str = Field(description="the command that starts it")
