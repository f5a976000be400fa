"""``python -m tui [PATH] [--engine URL --token-file F] [--run RUN]``: the TUI of the campaign at PATH."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.errors import TunedeckError
from engine.store.campaign import Campaign
from tui.client import EngineTarget, default_token_file, read_token


def build_parser() -> argparse.ArgumentParser:
    """The TUI's arguments."""
    parser = argparse.ArgumentParser(prog="tunedeck", description="The tunedeck cockpit (a Textual TUI).")
    parser.add_argument("path", nargs="?", default=".", metavar="PATH", help="campaign folder (default: here)")
    parser.add_argument("--engine", metavar="URL", help="an engine served over TCP, e.g. http://127.0.0.1:8765")
    parser.add_argument("--token-file", type=Path, metavar="F", help="its bearer token (default: PATH/.tunedeck/token)")
    parser.add_argument("--run", metavar="RUN", help="open on the Monitor of this run")
    return parser


def target_from_args(args: argparse.Namespace) -> EngineTarget:
    """Where the engine is: the campaign's socket, or ``--engine`` with its token."""
    if args.engine:
        root = Path(args.path).resolve()
        token_file = args.token_file or default_token_file(root)
        if token_file is None:
            raise TunedeckError("--engine needs --token-file F (the engine's .tunedeck/token)")
        return EngineTarget(campaign=root, url=args.engine.rstrip("/"), token=read_token(token_file), autostart=False)
    campaign = Campaign.open(args.path)  # a clear error when PATH holds no campaign.toml
    return EngineTarget(campaign=campaign.root)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and run the app; problems are one line on stderr, exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        target = target_from_args(args)
    except TunedeckError as exc:
        where = f" ({exc.path})" if exc.path else ""
        print(f"tunedeck: {exc}{where}", file=sys.stderr)
        sys.exit(2)
    from tui.app import TunedeckApp  # textual loads only once the arguments are good

    TunedeckApp(target, open_run=args.run).run()


if __name__ == "__main__":
    main()
