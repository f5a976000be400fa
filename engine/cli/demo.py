"""``tunedeck demo``: build the tiny offline model and run a campaign end to end."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli.common import Outcome, Say


def cmd_demo(args: argparse.Namespace, say: Say) -> Outcome:
    """Build the tiny model and run the demo campaign end to end; progress streams through ``say``."""
    from engine.demo.campaign import run_demo

    if not args.headless:
        say("the TUI is not built yet: running the demo headless")
    summary = run_demo(Path(args.dir), say)
    return Outcome(
        summary,
        f"done in {summary['seconds']} s: exact match {summary['eval']['before']:.2f} -> "
        f"{summary['eval']['after']:.2f}; campaign in {summary['campaign']}",
    )


def add_commands(sub: Any) -> None:
    """Register ``demo`` (it takes no --campaign: it makes its own)."""
    demo = sub.add_parser("demo", help="build a tiny offline model and run a campaign end to end")
    demo.add_argument("--headless", action="store_true", help="do not open the TUI")
    demo.add_argument("--json", action="store_true", help="print the result as one JSON object")
    demo.add_argument("--dir", default="tunedeck-demo", help="folder for the demo campaign")
    demo.set_defaults(handler=cmd_demo)
