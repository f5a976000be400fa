"""``tunedeck import trainer-state``: another tool's files brought into the campaign."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli.common import Outcome, Say, campaign_of


def cmd_import_trainer_state(args: argparse.Namespace, say: Say) -> Outcome:
    """Turn an HF trainer_state.json into a run's metrics."""
    from engine.store.trainer_state import import_trainer_state

    summary = import_trainer_state(campaign_of(args), Path(args.path), args.run)
    skipped = f"; skipped {summary.skipped} ({'; '.join(summary.reasons)})" if summary.skipped else ""
    return Outcome(
        summary, f"imported {summary.records} steps ({len(summary.metrics)} metrics) into {summary.run}{skipped}"
    )


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``import KIND`` on the main parser's subparsers."""
    importer = sub.add_parser("import", help="bring another tool's files into the campaign")
    kinds = importer.add_subparsers(dest="kind", metavar="KIND", required=True)
    trainer_state = kinds.add_parser("trainer-state", parents=[common], help="an HF trainer_state.json")
    trainer_state.add_argument("path", metavar="PATH")
    trainer_state.add_argument("--run", required=True, metavar="RUN")
    trainer_state.set_defaults(handler=cmd_import_trainer_state)
