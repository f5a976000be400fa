"""``tunedeck report [--out FILE] [--force]``: the campaign as Markdown, in the seed write-ups' style.

Without ``--out`` the Markdown goes to stdout; with it, to FILE, written whole (an existing file
is replaced only with ``--force``, a symlink never). ``--json`` prints the sections as data
(``CampaignReport``), the Markdown included. A part of the campaign that cannot be read (a
malformed registry line, a bench table that fails) is a one-line note in its section and a
warning on stderr; the report is still written and the exit status is 0. Exit 1: FILE was
refused (nothing written); 2: bad input (no campaign here).
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import Outcome, Say, campaign_of

REFUSED = 1


def cmd_report(args: argparse.Namespace, say: Say) -> Outcome:
    """Build the report; print it, or write it to ``--out``."""
    from engine.report.build import build_report
    from engine.report.write import ReportRefused, check_target, write_report

    campaign = campaign_of(args)
    try:
        if args.out is not None:
            check_target(args.out, force=args.force)  # refuse before the work, and again when writing
        report = build_report(campaign, out=args.out)
        if args.out is None:
            return Outcome(report, report.markdown.rstrip("\n"), warnings=report.warnings)
        written = write_report(args.out, report.markdown, force=args.force)
    except ReportRefused as refused:
        return Outcome(code=REFUSED, warnings=[f"report not written: {refused}"])
    report = report.model_copy(update={"out": str(written)})
    text = f"wrote {written}: {len(report.sections)} sections, {report.markdown.count(chr(10))} lines"
    return Outcome(report, text, warnings=report.warnings)


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``report`` on the main parser's subparsers."""
    parser = sub.add_parser("report", parents=[common], help="the campaign as Markdown, in the seeds' style")
    parser.add_argument("--out", metavar="FILE", help="write the Markdown to FILE instead of stdout")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.set_defaults(handler=cmd_report)
