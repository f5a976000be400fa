"""Decision endpoints of the engine service: what the TUI's Decide screen shows and does.

The TUI never imports engine.decisions (it reads DuckDB through the bench facts), so it asks
the service, which answers exactly what ``tunedeck decide --json`` prints: the same function
(engine.decisions.saved_walks.decide) and the same models (engine.api). The routes are sync, so
FastAPI runs their file and DuckDB work in its threadpool, as the bench routes do.

- ``GET /tree``: the campaign's tree, validated (``DecisionTreeView``);
- ``POST /runs/{run}/decide`` with ``{"answers": {...}, "replay": null}``: a walk, saved (``DecisionWalk``);
- ``GET /runs/{run}/decisions``: the saved walks (``WalkSummary``), ``GET /runs/{run}/decisions/{walk}`` one;
- ``POST /runs/{run}/from-decision`` with ``{"new_run": ...}``: runs/<new_run>/run.toml written (``NextRun``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, FastAPI

from engine.api import (
    DecideRequest,
    DecisionTreeView,
    DecisionWalk,
    NextRun,
    NextRunRequest,
    Recommendation,
    TreeFact,
    TreeNode,
    WalkSummary,
)
from engine.decisions.patch import next_run
from engine.decisions.saved_walks import decide, list_walks, load_walk
from engine.decisions.tree import Ask, Condition, DecisionTree, Leaf, load_tree
from engine.decisions.walk import json_safe
from engine.store.campaign import Campaign


def _node(node: Condition | Ask | Leaf) -> TreeNode:
    fields: dict[str, Any] = {"fact": None, "op": None, "operand": None, "key": None, "question": None, "title": None}
    if isinstance(node, Condition):
        branches = {"then": node.then, "else": node.otherwise} | ({"unknown": node.unknown} if node.unknown else {})
        fields |= {"fact": node.fact, "op": node.op, "operand": node.value}
        return TreeNode(id=node.id, kind="condition", facts=[node.fact], branches=branches, **fields)
    if isinstance(node, Ask):
        fields |= {"key": node.key, "question": node.question}
        return TreeNode(id=node.id, kind="ask", facts=list(node.facts), branches=dict(node.choices), **fields)
    return TreeNode(id=node.id, kind="leaf", facts=list(node.facts), branches={}, **(fields | {"title": node.title}))


def tree_view(tree: DecisionTree) -> DecisionTreeView:
    """The validated tree as the TUI draws it: facts, nodes (conditions and asks), then leaves."""
    facts = [
        TreeFact(name=name, kind=spec.kind, label=spec.label or spec.describe(), params=json_safe(spec.params()))
        for name, spec in tree.facts.items()
    ]
    leaves = [
        Recommendation(id=n.id, title=n.title, reasons=list(n.reasons), config_patch=n.config_patch,
                       config_unset=list(n.config_unset))
        for n in tree.nodes.values() if isinstance(n, Leaf)
    ]  # fmt: skip
    nodes = [_node(n) for n in tree.nodes.values()]
    return DecisionTreeView(tree=tree.relative, start=tree.start, facts=facts, nodes=nodes, leaves=leaves)


def add_decide_routes(app: FastAPI, campaign: Campaign) -> None:
    """GET /tree, POST /runs/{run}/decide, GET /runs/{run}/decisions[/{walk}], POST /runs/{run}/from-decision."""

    @app.get("/tree", response_model=DecisionTreeView)
    def tree() -> DecisionTreeView:
        return tree_view(load_tree(campaign))

    @app.post("/runs/{run}/decide", response_model=DecisionWalk)
    def decide_run(run: str, request: Annotated[DecideRequest | None, Body()] = None) -> DecisionWalk:
        asked = request or DecideRequest()
        return decide(campaign, run, asked.answers, replay=asked.replay)

    @app.get("/runs/{run}/decisions", response_model=list[WalkSummary])
    def decisions(run: str) -> list[WalkSummary]:
        return list_walks(campaign, run)

    @app.get("/runs/{run}/decisions/{walk}", response_model=DecisionWalk)
    def decision(run: str, walk: str) -> DecisionWalk:
        return load_walk(campaign, run, walk)

    @app.post("/runs/{run}/from-decision", response_model=NextRun)
    def from_decision(run: str, request: NextRunRequest) -> NextRun:
        return next_run(campaign, run, request.new_run)
