"""``tunedeck promote``, ``tunedeck revert`` and ``tunedeck history``: the production registry.

Handlers return an ``Outcome`` that ``main`` prints; the work is engine.decisions.registry's,
which the service calls too. promote and revert exit 0 when they changed production, 1 when a
check refused (the gate, the artifact, nothing to undo: the reason on stdout, the same
``RegistryResult`` with ``--json``), 2 on bad input.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.api import RegistryEntry, RegistryHistory, RegistryResult
from engine.cli.common import Outcome, Say, campaign_of, text_table

REFUSED = 1


def _result_text(result: RegistryResult) -> str:
    if result.refused != "gate" or result.gate is None:
        return result.message
    # The message holds the reasons on one line (for scripts and the TUI); a person gets one per line.
    lines = [f"refused: the gate failed for {result.gate.run}; nothing changed (--force --reason TEXT overrides it)"]
    lines += [f"  ✗ {reason}" for reason in result.gate.reasons]
    lines += [f"  note: {note}" for note in result.gate.notes]
    return "\n".join(lines)


def _outcome(result: RegistryResult) -> Outcome:
    return Outcome(
        result, _result_text(result), code=0 if result.refused is None else REFUSED, warnings=result.warnings
    )


def cmd_promote(args: argparse.Namespace, say: Say) -> Outcome:
    """Run the gate, then point production.json at the run's merged model (or adapter)."""
    from engine.decisions.registry import promote

    result = promote(
        campaign_of(args), args.run, artifact=args.artifact, reason=args.reason, force=args.force, dry_run=args.dry_run
    )
    return _outcome(result)


def cmd_revert(args: argparse.Namespace, say: Say) -> Outcome:
    """Undo the latest promote not yet undone."""
    from engine.decisions.registry import revert

    return _outcome(revert(campaign_of(args), reason=args.reason, dry_run=args.dry_run))


def _who_what(entry: RegistryEntry) -> list[str]:
    gate = "" if entry.gate is None else entry.gate.verdict + (" (forced)" if entry.gate.forced else "")
    change = f"{entry.from_run or '-'} -> {entry.to_run or '-'}"
    action = entry.action if entry.undoes is None else f"revert #{entry.undoes}"
    reason = (entry.reason or "").replace("\n", " ")
    return [f"#{entry.seq}", entry.time, action, change, gate, f"{entry.user}@{entry.host}", reason]


def _history_text(history: RegistryHistory) -> str:
    pointer = history.production
    if pointer is None:
        lines = ["production: none"]
    else:
        sha = f", sha256 {pointer.sha256[:12]}" if pointer.sha256 else ""
        lines = [
            f"production: {pointer.run} ({pointer.artifact or 'no artifact recorded'}{sha}) since {pointer.promoted_at}"
        ]
    if history.note:
        lines.append(f"  ({history.note})")
    if history.entries:
        header = ["seq", "time", "action", "from -> to", "gate", "by", "reason"]
        lines += ["", text_table(header, (_who_what(e) for e in reversed(history.entries)))]
    return "\n".join(lines)


def cmd_history(args: argparse.Namespace, say: Say) -> Outcome:
    """The promote / revert log, newest first (``--json``: oldest first, as the file holds it)."""
    from engine.decisions.registry import history, rebuild

    campaign = campaign_of(args)
    warnings = []
    if args.rebuild:
        state, changed = rebuild(campaign)
        warnings.append("rewrote production.json from registry.jsonl" if changed else "production.json already agrees")
    result = history(campaign)
    return Outcome(result, _history_text(result), warnings=warnings)


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register promote, revert and history on the main parser's subparsers."""
    promote = sub.add_parser("promote", parents=[common], help="run the gate, then put a run in production")
    promote.add_argument("run", metavar="RUN")
    promote.add_argument(
        "--artifact", choices=["merged", "adapter"], default="merged",
        help="runs/RUN/merged (default) or the final adapter runs/RUN/adapter, served on the run's base",
    )  # fmt: skip
    promote.add_argument("--reason", metavar="TEXT", help="why (logged; needed with --force)")
    promote.add_argument("--force", action="store_true", help="promote despite a failed gate (needs --reason)")
    promote.add_argument("--dry-run", action="store_true", help="run every check, change nothing")
    promote.set_defaults(handler=cmd_promote)

    revert = sub.add_parser("revert", parents=[common], help="undo the latest promote not yet undone")
    revert.add_argument("--reason", metavar="TEXT", help="why (logged)")
    revert.add_argument("--dry-run", action="store_true", help="say what production would become, change nothing")
    revert.set_defaults(handler=cmd_revert)

    history = sub.add_parser("history", parents=[common], help="the promote / revert log and production")
    history.add_argument("--rebuild", action="store_true", help="rewrite production.json from registry.jsonl first")
    history.set_defaults(handler=cmd_history)
