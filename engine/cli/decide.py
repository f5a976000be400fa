"""``tunedeck decide RUN`` and ``tunedeck run --from-decision RUN NEW_RUN``: the decision tree's walk and its next run.

Exit status of ``decide``: 0 when the walk reached a recommendation, 3 when it stopped at an
unanswered question or an unknown fact (the walk is saved either way and ``--json`` says why),
2 for bad input (a malformed tree, an unknown ``--answer`` key or choice). ``--from-decision``
exits 1 when it refuses (NEW_RUN exists, the latest walk has no recommendation).
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.api import DecisionWalk, NextRun
from engine.cli.common import Outcome, Say, campaign_of
from engine.errors import ConfigError

EXIT_UNDECIDED = 3


def parse_answers(pairs: list[str]) -> dict[str, str]:
    """``KEY=CHOICE`` pairs as a dict; a pair without ``=`` is bad input."""
    answers: dict[str, str] = {}
    for pair in pairs:
        key, sep, choice = pair.partition("=")
        if not sep or not key or not choice:
            raise ConfigError(f"expected KEY=CHOICE, got {pair!r}", field="--answer")
        answers[key.strip()] = choice.strip()
    return answers


def _flat(patch: dict[str, Any], prefix: str = "") -> list[str]:
    from engine.decisions.facts import format_value

    lines = []
    for key, value in patch.items():
        if isinstance(value, dict):
            lines += _flat(value, f"{prefix}{key}.")
        else:
            lines.append(f"{prefix}{key} = {format_value(value)}")
    return lines


def _walk_text(walk: DecisionWalk) -> str:
    from engine.decisions.facts import format_value

    saved = f"walk {walk.walk} (runs/{walk.run}/decisions/{walk.walk}.json)"
    lines = []
    if walk.replay_of is not None:
        changed = ", ".join(f"{c.fact} {format_value(c.before)} -> {format_value(c.after)}" for c in walk.changed_facts)
        lines.append(f"replay of walk {walk.replay_of}: " + (f"facts changed: {changed}" if changed else "same facts"))
    lines.append(f"path: {' -> '.join(walk.path)}")
    rec = walk.recommendation
    if rec is not None:
        lines[:0] = [f"{walk.run}: {rec.id} - {rec.title}"]
        lines += ["because:", *(f"  - {reason}" for reason in rec.reasons)]
        patch = _flat(rec.config_patch) + [f"{key}: removed" for key in rec.config_unset]
        lines += ["config patch:", *(f"  {line}" for line in patch or ["(none)"])]
        lines.append(f"saved as {saved}; next: tunedeck run --from-decision {walk.run} NEW_RUN")
        return "\n".join(lines)
    lines[:0] = [f"{walk.run}: no recommendation yet"]
    lines += [f"  {step.text}" for step in walk.steps]
    for question in walk.questions:
        lines.append(f"? {question.question}")
        for name in question.facts:
            fact = walk.facts[name]
            lines.append(f"    {fact.label} = {format_value(fact.value) if fact.known else 'unknown'}")
        lines.append(f"  answer: tunedeck decide {walk.run} --answer {question.key}={'|'.join(question.choices)}")
    if walk.stopped and not walk.questions:
        lines.append(f"stopped: {walk.stopped}")
    lines.append(f"saved as {saved}")
    return "\n".join(lines)


def cmd_decide(args: argparse.Namespace, say: Say) -> Outcome:
    """Walk the campaign's decision tree over a run; exit 0 with a recommendation, 3 without."""
    # Imported here, as the bench commands do: the facts read DuckDB, which `tunedeck --help` need not load.
    from engine.decisions.saved_walks import decide

    walk = decide(campaign_of(args), args.run, parse_answers(args.answer), replay=args.replay)
    return Outcome(walk, _walk_text(walk), code=0 if walk.recommendation else EXIT_UNDECIDED)


def cmd_from_decision(args: argparse.Namespace, run: str, new_run: str) -> Outcome:
    """Write runs/NEW_RUN/run.toml from RUN's latest walk (``tunedeck run --from-decision``)."""
    from engine.decisions.patch import NextRunRefused, next_run

    try:
        made: NextRun = next_run(campaign_of(args), run, new_run)
    except NextRunRefused as refused:
        return Outcome(code=1, warnings=[str(refused)])
    text = (
        f"wrote {made.run_toml} ({made.recommendation}, from walk {made.walk} of {made.parent}); start it: {made.start}"
    )
    return Outcome(made, text)


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``decide`` on the main parser's subparsers."""
    parser = sub.add_parser("decide", parents=[common], help="walk the campaign's decision tree over a run")
    parser.add_argument("run", metavar="RUN")
    parser.add_argument(
        "--answer", action="append", default=[], metavar="KEY=CHOICE", help="answer an ask node (repeatable)"
    )
    parser.add_argument("--replay", metavar="WALK", help="walk again with a saved walk's answers (an id, or latest)")
    parser.set_defaults(handler=cmd_decide)
