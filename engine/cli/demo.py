"""``tunedeck demo``: build the tiny offline model and run a campaign end to end.

Without ``--headless`` the demo run trains in the campaign's engine while the app shows it live
(the loss falls within the first minute); ``--headless`` runs every step here and prints a summary.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from engine.cli.client import EngineClient
from engine.cli.common import Outcome, Say


def cmd_demo(args: argparse.Namespace, say: Say) -> Outcome:
    """Build the tiny model and run the demo campaign end to end; progress streams through ``say``."""
    if not args.headless and not args.json:
        return _live_demo(Path(args.dir), say)
    from engine.demo.campaign import run_demo

    summary = run_demo(Path(args.dir), say)
    return Outcome(
        summary,
        f"done in {summary['seconds']} s: exact match {summary['eval']['before']:.2f} -> "
        f"{summary['eval']['after']:.2f}; campaign in {summary['campaign']}",
    )


def _live_demo(root: Path, say: Say) -> Outcome:
    """Queue the demo run in the engine, then become the app on the demo campaign."""
    from engine.demo.campaign import RUN, prepare_live_demo

    campaign = prepare_live_demo(root, say)
    with EngineClient(campaign) as client:
        client.ensure_running()
        client.start(RUN)
    say(f"{RUN} is training in the engine; opening the app on it (1: all runs; q quits, the run goes on)")
    say("the whole demo with merge and bench, without the app: tunedeck demo --headless")
    # The app is its own module path (the engine never imports textual): this process becomes it.
    os.execv(sys.executable, [sys.executable, "-m", "tui", str(campaign.root), "--run", RUN])
    return Outcome(code=0)  # not reached


def add_commands(sub: Any) -> None:
    """Register ``demo`` (it takes no --campaign: it makes its own)."""
    demo = sub.add_parser("demo", help="build a tiny offline model and run a campaign end to end")
    demo.add_argument("--headless", action="store_true", help="run every step here and print a summary (no app)")
    demo.add_argument("--json", action="store_true", help="print the result as one JSON object (implies --headless)")
    demo.add_argument("--dir", default="tunedeck-demo", help="folder for the demo campaign")
    demo.set_defaults(handler=cmd_demo)
