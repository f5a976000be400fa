"""The ``tunedeck`` command line: the parser, and the one place that prints a command's outcome.

Every command takes ``--campaign DIR`` (default: the current directory). Handlers (one module
per command group: runs, engine_commands, imports, demo, bench) return an ``Outcome``; ``main``
writes it: with ``--json`` one JSON object on stdout, else the human text, and warnings on
stderr. A problem the user can fix is one line on stderr naming file, line and field, with exit
status 2; no Python traceback reaches a user (set TUNEDECK_DEBUG=1 to see one for an internal error).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from engine.cli import bench, decide, demo, engine_commands, imports, registry, report, runs
from engine.cli.common import Outcome, Payload
from engine.errors import EXIT_BAD_INPUT, TunedeckError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every tunedeck command."""
    parser = argparse.ArgumentParser(prog="tunedeck", description="A terminal cockpit for fine-tuning campaigns.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--campaign", default=".", metavar="DIR", help="campaign folder (default: current directory)")
    common.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo.add_commands(sub)
    runs.add_commands(sub, common)
    engine_commands.add_commands(sub, common)
    runs.add_merge_command(sub, common)
    imports.add_commands(sub, common)
    bench.add_commands(sub, common)
    registry.add_commands(sub, common)
    decide.add_commands(sub, common)
    report.add_commands(sub, common)
    return parser


def _jsonable(payload: Payload) -> Any:
    """The payload as plain JSON values (a model as its API shape: NaN as "NaN", paths as text)."""
    if isinstance(payload, BaseModel):
        return payload.model_dump(mode="json")
    if isinstance(payload, dict):
        return payload
    return [item.model_dump(mode="json") for item in payload]


def write_outcome(outcome: Outcome, *, as_json: bool) -> int:
    """Print an outcome: warnings on stderr, then the JSON payload or the text on stdout; its exit status."""
    for warning in outcome.warnings:
        print(f"tunedeck: {warning}", file=sys.stderr)
    if as_json:
        if outcome.payload is not None:
            print(json.dumps(_jsonable(outcome.payload)))
    else:
        text = outcome.text() if callable(outcome.text) else outcome.text
        if text:
            print(text)
    return outcome.code


def _wants_tui(parser: argparse.ArgumentParser, argv: Sequence[str]) -> bool:
    """No sub-command, or a campaign folder / ``--engine`` first: the TUI's arguments."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands = {name for action in subparsers for name in action.choices}
    first = argv[0] if argv else None
    return first is None or first in ("--engine", "--token-file") or (first not in commands and os.path.isdir(first))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``tunedeck`` console script (``tunedeck [PATH]`` alone opens the TUI)."""
    parser = build_parser()
    given = list(sys.argv[1:] if argv is None else argv)
    if _wants_tui(parser, given):
        # The TUI runs as its own module in this process's place: the engine never imports textual.
        os.execv(sys.executable, [sys.executable, "-m", "tui", *given])
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        sys.exit(0)
    as_json = bool(getattr(args, "json", False))

    def say(line: str) -> None:
        """A progress line of a long command: on stderr with --json, so stdout stays one JSON object."""
        print(line, file=sys.stderr if as_json else sys.stdout, flush=True)

    try:
        code = write_outcome(args.handler(args, say), as_json=as_json)
    except TunedeckError as exc:
        print(f"tunedeck: {exc}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # The reader went away (`tunedeck status | head -1`): nobody is left to tell. Point stdout at
        # /dev/null so the interpreter's final flush does not complain either; 141 is a shell's SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    except Exception as exc:  # a bug of ours: one line, details on request
        if os.environ.get("TUNEDECK_DEBUG"):
            traceback.print_exc()
        print(
            f"tunedeck: internal error: {type(exc).__name__}: {exc} (TUNEDECK_DEBUG=1 shows details)",
            file=sys.stderr,
        )
        code = 1
    sys.exit(code)
